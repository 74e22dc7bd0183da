from veteran.cli import main

main()
