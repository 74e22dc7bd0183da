"""Providers: where models run, behind one base class (see base.py)."""
