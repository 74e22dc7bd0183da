"""Hand-written material for the memory benchmark's labelled set (see memory/README.md).

Everything here is fiction about one company, Halvorsen Instruments. `build_memory_set.py`
expands it combinatorially with a fixed seed. Two rules keep the set honest:

- a fault's *passage* wording (`Fault.descriptions`, `causes`, `fixes`) and its *question*
  wording (`Fault.questions`) share no content word, so a question about a fault can only be
  matched to its passage by meaning;
- the same holds for each `Article`'s text and its two questions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # what the instrument is
    spec: str  # one sentence of its datasheet, with {lo} and {hi} filled per model


@dataclass(frozen=True)
class Fault:
    key: str
    descriptions: tuple[str, ...]  # passage wording
    causes: tuple[str, ...]
    fixes: tuple[str, ...]
    questions: tuple[str, ...]  # question wording: no content word in common with the above


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    questions: tuple[str, str]


FAMILIES = (
    Family("Corvid", "mass flow controller", "It regulates gas flow from {lo} to {hi} litres per "
           "minute with a repeatability of 0.2 percent of reading."),
    Family("Halden", "pressure transmitter", "Its span covers {lo} to {hi} bar with a 4-20 mA "
           "output and HART diagnostics."),
    Family("Marlin", "dosing pump", "It delivers {lo} to {hi} millilitres per stroke against a "
           "back-pressure of up to 16 bar."),
    Family("Skua", "thermal imaging camera", "Its detector resolves {lo} by {hi} pixels and "
           "streams radiometric frames over Ethernet."),
    Family("Tarn", "level radar", "It tracks tank contents between {lo} and {hi} metres with "
           "a 80 GHz beam."),
    Family("Osprey", "gas analyser", "It reports oxygen between {lo} and {hi} percent using a "
           "zirconia cell."),
    Family("Brant", "vibration monitor", "It samples two channels at {lo} to {hi} kilohertz and "
           "computes envelope spectra on board."),
    Family("Fulmar", "conductivity meter", "It reads from {lo} to {hi} microsiemens per "
           "centimetre with automatic temperature compensation."),
    Family("Gannet", "data acquisition gateway", "It aggregates {lo} to {hi} field devices and "
           "forwards telemetry over MQTT."),
    Family("Kestrel", "weighing terminal", "It resolves loads from {lo} to {hi} kilograms in "
           "legal-for-trade mode."),
)

FAULTS = (
    Fault("overheat",
          ("thermal shutdown: the internal temperature exceeded its rated limit and the drive "
           "stage was disabled", "the enclosure temperature passed 85 °C, so protection "
           "disabled the drive stage"),
          ("Usually caused by blocked ventilation slots or ambient heat above specification.",
           "Direct sunlight on the housing and clogged ventilation slots are the usual reasons."),
          ("Clean the cooling fins, keep 50 mm of clearance around the enclosure and restart "
           "after a cool-down of 20 minutes.", "Shade the housing, clean the cooling fins and "
           "restart once the enclosure is below 60 °C."),
          ("gets too hot and switches itself off", "cuts out after running hot for a while",
           "turns itself off when it warms up")),
    Fault("brownout",
          ("supply voltage dropped below the minimum threshold; a brown-out was logged and the "
           "device rebooted", "undervoltage on the 24 V rail forced a controlled reboot"),
          ("A sagging supply rail or a loose terminal block is the typical origin.",
           "Long cable runs and an undersized power supply unit cause the dip."),
          ("Measure the rail under load, tighten the terminals to 0.5 Nm and replace the supply "
           "if ripple exceeds 200 mV.", "Fit a larger supply unit and tighten every terminal "
           "to 0.5 Nm."),
          ("starts up again from scratch when the mains wobbles",
           "randomly restarts whenever the electricity flickers",
           "keeps resetting itself when the lights dim")),
    Fault("drift",
          ("measurement drift: readings deviate from the reference standard by more than the "
           "allowed tolerance", "the zero point has shifted and readings no longer agree with "
           "the reference standard"),
          ("Sensor ageing and exposure to vibration shift the zero point over months.",
           "Ageing of the sensing element shifts the zero point gradually."),
          ("Run the two-point calibration routine against a certified reference and record the "
           "new offsets.", "Recalibrate against a certified reference and store the offsets."),
          ("shows values that slowly creep away from the true figure",
           "gives numbers that are a bit off compared to what they really are",
           "is getting less accurate week by week")),
    Fault("bus",
          ("fieldbus communication timeout: telegrams from the host PLC stopped arriving",
           "the host PLC stopped answering on the fieldbus and the telegram watchdog expired"),
          ("Faulty termination resistors, damaged cable shields or duplicate node addresses.",
           "Duplicate node addresses and missing termination resistors are the usual reasons."),
          ("Check the 120 ohm terminators at both bus ends, inspect shielding and assign unique "
           "station numbers.", "Fit terminators at both ends and give every node a unique "
           "station number."),
          ("lost its link with the central automation box",
           "can't talk to the plant's main computer anymore",
           "went silent towards the supervisory system we use")),
    Fault("firmware",
          ("firmware upgrade aborted: the image checksum did not match and the bootloader "
           "reverted to the previous release", "the bootloader rejected the new image because "
           "its checksum did not match, and kept the previous release"),
          ("Interrupted transfers and corrupted download files.",
           "A download that was cut short leaves a corrupted image."),
          ("Download the package again from the service portal, verify the SHA-256 hash and "
           "flash over a wired connection.", "Fetch the image again, verify its hash and "
           "flash it over a wired connection."),
          ("didn't take the new software and rolled back to the old version",
           "refused my software install and went back to what it had before",
           "won't accept an update, it just keeps the old version")),
    Fault("open_probe",
          ("probe open circuit: no signal on the input channel, indicating a broken lead or "
           "detached connector", "the input channel sees an open circuit: the probe lead is "
           "broken or its connector detached"),
          ("Cable strain at the gland and corroded pins.",
           "Corroded pins and strain where the lead enters the gland."),
          ("Reseat the M12 plug, check continuity with a multimeter and replace the probe "
           "cable if resistance is infinite.", "Reseat the M12 plug and replace the probe "
           "cable if continuity is lost."),
          ("acts like the wire to its feeler has been cut",
           "says the thing that senses isn't attached",
           "thinks nothing is plugged into it")),
    Fault("config_lost",
          ("configuration checksum error: stored parameters were corrupted and factory "
           "defaults were loaded", "the parameter memory failed its checksum, so factory "
           "defaults were loaded"),
          ("Power removal during a save operation or an exhausted backup cell.",
           "Removing power while parameters are being saved corrupts them."),
          ("Restore the parameter set from the last backup file and replace the CR2032 cell if "
           "it reads under 2.8 V.", "Restore parameters from the last backup file."),
          ("forgot all my settings overnight",
           "lost my custom setup and is back to how it came out of the box",
           "wiped everything I had tuned")),
    Fault("display",
          ("front panel LCD blank while the unit continues operating; backlight driver fault",
           "the LCD backlight driver failed, leaving the panel blank while operation "
           "continues"),
          ("Failed backlight LEDs or a cracked ribbon connector behind the bezel.",
           "A cracked ribbon connector behind the bezel."),
          ("Replace the display module (kit DM-2) and reconnect the flex cable with the latch "
           "fully closed.", "Fit display module kit DM-2 and close the flex cable latch."),
          ("screen is black although the machine keeps running",
           "I can't see anything on the little window but it still works",
           "went dark on the readout, yet it seems fine otherwise")),
    Fault("moisture",
          ("humidity alarm: condensation detected inside the enclosure, insulation resistance "
           "below limit", "condensation inside the enclosure lowered the insulation "
           "resistance below its limit"),
          ("Degraded gasket seals or cable entries left unplugged.",
           "Ageing lid gaskets and unplugged cable entries."),
          ("Dry the housing, renew the lid gasket, fit blanking plugs in spare entries and add a "
           "desiccant pack.", "Dry the housing, renew the gasket and add a desiccant pack."),
          ("has water getting into the box", "is damp on the inside after rain",
           "has drops forming under its cover")),
    Fault("fan",
          ("cooling fan stalled: the tachometer reports zero rotation",
           "the tachometer of the cooling fan reads zero rotation"),
          ("Dust build-up on the impeller or worn bearings.",
           "Worn bearings or dust on the impeller."),
          ("Replace the fan assembly with spare kit FK-40 and check the airflow direction "
           "arrows.", "Fit spare kit FK-40 and check the airflow arrows."),
          ("has a blower inside that isn't going round anymore",
           "has a little propeller that stopped spinning",
           "makes no whirring sound any more and nothing moves inside")),
    Fault("clock",
          ("real-time clock lost synchronisation; timestamps in the event log are invalid",
           "event log timestamps are invalid because the real-time clock lost "
           "synchronisation"),
          ("NTP server unreachable or the clock battery depleted.",
           "An unreachable NTP server."),
          ("Configure a reachable time server, confirm UDP port 123 is open and set the date "
           "manually if needed.", "Point the unit at a reachable NTP server on UDP port 123."),
          ("puts the wrong day and hour on its records",
           "thinks it's a different day than it is",
           "has history entries stamped with nonsense moments")),
    Fault("licence",
          ("feature licence expired: the advanced analytics module was deactivated",
           "the analytics module was deactivated because its licence expired"),
          ("Subscription key not renewed before the end of its term.",
           "The renewal key was not entered in time."),
          ("Request a renewal key from Customer Operations and enter it under Settings > "
           "Licences.", "Enter a renewal key from Customer Operations."),
          ("lost premium features, did my plan run out",
           "stopped offering the extra functions I paid for",
           "hides the paid add-on tools now")),
    Fault("overcurrent",
          ("output stage overcurrent: load draw exceeded 2 A and the protective fuse opened",
           "the protective fuse opened after the output load drew more than 2 A"),
          ("Short circuit in the field wiring or an oversized actuator.",
           "A short in the field wiring."),
          ("Disconnect the load, test the wiring insulation and fit the replacement fuse "
           "(T2A, 5x20 mm).", "Test the wiring insulation and fit a T2A fuse."),
          ("blew because something I hooked up pulls too much juice",
           "got fried by a gadget connected to it that hogs electricity",
           "popped when I attached a hungry motor")),
    Fault("vibration",
          ("excessive vibration detected by the accelerometer; mounting bracket loose",
           "the accelerometer reports excessive vibration because the mounting bracket is "
           "loose"),
          ("Unbalanced rotating equipment nearby or missing anti-vibration pads.",
           "Missing anti-vibration pads."),
          ("Tighten the bracket bolts to 8 Nm and fit rubber isolation mounts.",
           "Tighten the bracket bolts and fit rubber isolation mounts."),
          ("is shaking a lot where it's fixed to the wall", "keeps rattling on its stand",
           "wobbles and trembles on the pipe it sits on")),
    Fault("lockout",
          ("administrator account locked after five consecutive invalid password attempts",
           "five invalid password attempts in a row locked the administrator account"),
          ("Mistyped credentials or an automated script using an outdated secret.",
           "A script retrying with an outdated secret."),
          ("Wait 15 minutes for the lockout to clear or reset the account with the service PIN "
           "from the rating label.", "Wait 15 minutes or use the service PIN on the rating "
           "label."),
          ("won't let me sign in after I got it wrong a few times",
           "refuses me entry since I typed the wrong pass phrase repeatedly",
           "keeps me out after several bad tries at logging on")),
    Fault("storage_full",
          ("data logger memory full; the oldest records are being overwritten",
           "the data logger memory is full and overwrites its oldest records"),
          ("Export interval set too long or SD card capacity too small.",
           "An SD card that is too small."),
          ("Download the archive, shorten the upload schedule and fit a 32 GB industrial card.",
           "Download the archive and fit a 32 GB industrial card."),
          ("has no more room to save history", "ran out of space for past readings",
           "can't keep any more of what it measured before")),
    Fault("overrange",
          ("input over-range: the process value exceeds the upper limit of the span",
           "the process value is above the upper limit of the configured span"),
          ("The process operates beyond the span chosen at commissioning.",
           "A span chosen too narrow at commissioning."),
          ("Widen the span in the configuration or select a model with a higher rating.",
           "Widen the configured span or choose a higher rating."),
          ("sees something beyond the top of its scale",
           "is being asked to read more than it can show",
           "maxes out on what it's sensing")),
    Fault("relay",
          ("alarm relay contacts welded closed; the output no longer releases",
           "the alarm relay contacts have welded shut and the output stays energised"),
          ("Switching inductive loads without a suppressor.",
           "An inductive load switched without suppression."),
          ("Replace the relay board and add an RC snubber across the contactor coil.",
           "Fit a new relay board and an RC snubber."),
          ("has its warning switch jammed in the on position",
           "won't let go of the signal that tells us something is wrong",
           "keeps buzzing the siren even after the problem is gone")),
    Fault("selftest",
          ("power-on self-test failed: the RAM integrity check reported a fault",
           "the RAM integrity check of the power-on self-test failed"),
          ("Component failure on the main processor board.",
           "A failed component on the main processor board."),
          ("The unit is not field-repairable; return it under an RMA for board replacement.",
           "Return it under an RMA; it cannot be repaired on site."),
          ("won't get past the checks it runs when I switch it on",
           "fails its startup routine every time I boot it",
           "gets stuck testing itself right after I turn it on")),
    Fault("battery",
          ("backup battery voltage low; remaining capacity under 10 percent",
           "the backup battery is below 10 percent of capacity"),
          ("Normal depletion after roughly three years in service.",
           "Normal depletion after about three years."),
          ("Swap the lithium pack (order BP-7) during the next maintenance window; settings are "
           "retained.", "Swap the lithium pack BP-7 at the next maintenance window."),
          ("has a spare power source that is nearly drained",
           "needs its reserve cell changed soon",
           "is warning that the little cell keeping the clock alive is almost empty")),
)

FAMILY_PREFIXES = ("XR", "KV", "TM", "QS", "LD", "HX", "PF", "ZN")
SITES = ("Tessaly", "Brenner Road", "Kilvane", "Oudenbosch", "Marrow Point", "Skelde")
TEAMS = ("Field Service", "Calibration", "Quality", "Logistics", "IT Operations", "Facilities",
         "Production Engineering", "Customer Operations", "Finance", "People Operations")
FIRST_NAMES = ("Ingrid", "Tomasz", "Amara", "Lucien", "Priya", "Henrik", "Yusuf", "Maren",
               "Dario", "Sefa", "Colm", "Nadia", "Ruairi", "Ilse", "Kofi", "Beatriz", "Jovan",
               "Annika", "Rashid", "Veronika", "Emeka", "Solveig", "Tariq", "Liesel", "Mateo",
               "Oona", "Bartek", "Farida", "Gideon", "Hanne")
LAST_NAMES = ("Okafor", "Lindqvist", "Brannigan", "Vasquez", "Haddad", "Kowalczyk", "Iversen",
              "Mbeki", "Castellano", "Rautio", "Demir", "Achterberg", "Nwosu", "Ferreira",
              "Halloran", "Szabo", "Quispe", "Novak", "Aalto", "Marchetti", "Oyelaran", "Duval",
              "Tanaka", "Kristensen", "Petrov", "Ndiaye", "Lachance", "Moreau", "Eriksen",
              "Abernethy")
ROLES = (
    ("site manager", "signs off capital spending and chairs the weekly operations review"),
    ("safety officer", "approves hot-work permits and runs the quarterly evacuation drill"),
    ("calibration technician", "certifies reference standards and keeps the lab's "
     "traceability records"),
    ("field service engineer", "visits customer plants to commission and repair instruments"),
    ("quality lead", "owns corrective actions and the supplier audit schedule"),
    ("logistics coordinator", "books carriers and tracks inbound containers"),
    ("network administrator", "maintains firewalls, switches and the plant VPN"),
    ("production planner", "sequences orders on the assembly lines each week"),
    ("buyer", "negotiates component contracts and raises purchase orders"),
    ("HR partner", "advises managers on hiring, contracts and leave questions"),
    ("firmware developer", "maintains the bootloader and release pipeline"),
    ("applications engineer", "helps customers select instruments and sizes installations"),
)

ARTICLES = (
    Article("Air travel", "Employees book economy fares through the corporate booking portal. "
            "Business class is permitted only for flights exceeding eight hours and needs "
            "director approval before the ticket is issued. Upgrades paid personally are fine "
            "but are not reimbursable.",
            ("Can I sit up front in a nicer seat on a long-haul trip for work?",
             "When am I allowed a premium cabin if the plane journey is really long?")),
    Article("Expense claims", "Expense claims must include an itemised receipt for every "
            "purchase above 25 euros. Claims are submitted within 60 days of the spending "
            "date; later submissions are rejected by Finance unless a vice president grants an "
            "exception.",
            ("How long do I have to hand in my costs to get reimbursed?",
             "Is there a deadline to get paid back for stuff I bought on the firm's behalf?")),
    Article("Parental leave", "New parents receive 20 weeks of fully salaried absence, which "
            "may be taken in up to three blocks before the child's second birthday. Adoptive "
            "and foster parents have the same entitlement.",
            ("How much time off do I get when I have a baby?",
             "If my kid is born, how long can I stay home and still get my pay?")),
    Article("Working from home", "Staff may work remotely up to three days per week when "
            "their manager agrees. Home office equipment such as a monitor and chair can be "
            "ordered once every four years.",
            ("How often can I skip the commute and do my job from my flat?",
             "Can I telecommute part of the time?")),
    Article("Laptop refresh", "Notebooks are replaced on a four-year cycle. Earlier "
            "replacement requires a fault report from the IT service desk. Devices must be "
            "returned with their charger; missing chargers are billed to the department.",
            ("My computer is old and slow, when do I get a new one?",
             "How frequently do staff receive fresh portable computers?")),
    Article("Passwords", "Credentials expire every 180 days. To reset a forgotten password, "
            "use the self-service page with your registered phone; the helpdesk cannot read out "
            "passwords. Accounts lock after ten failed attempts.",
            ("I can't remember my login secret, how do I get back in?",
             "What do I do if the phrase I sign in with slipped my mind?")),
    Article("Remote access", "The VPN client is mandatory on untrusted networks such as "
            "hotels and airports. Connect before opening internal tools; split tunnelling is "
            "disabled. Tokens are issued by the security team.",
            ("Do I need to switch on the encrypted connection when using wifi at a guesthouse?",
             "Is the private network app required when I'm working from a café?")),
    Article("Visitors", "Guests sign in at reception, wear a red badge at all times and must be "
            "escorted by their host. Badges are returned at departure; lost badges are reported "
            "to Security.",
            ("What do people coming to see me need to do when they arrive?",
             "Rules for bringing an outside person into the building?")),
    Article("Parking", "Spaces in the staff car park are allocated by seniority and shift "
            "pattern. Electric vehicle chargers are limited to four hours per vehicle per day. "
            "Motorcycles use the covered bays beside gate B.",
            ("Where am I allowed to leave my automobile?",
             "How long can I keep my EV plugged in?")),
    Article("Evacuation", "When the alarm sounds, leave by the nearest marked exit, do not use "
            "lifts, and assemble at the muster point in the north lot. Wardens in yellow vests "
            "take a head count.",
            ("What should I do if the fire bell goes off?",
             "Where do we gather outside during an emergency?")),
    Article("Chemical waste", "Solvents, oil-soaked rags and spent batteries go into the "
            "labelled yellow drums in the waste compound, never into general bins. The "
            "environmental officer arranges licensed collection monthly.",
            ("How do I throw away dirty cleaning fluids?",
             "Where should used paint thinner end up?")),
    Article("Forklifts", "Forklift operation requires a valid internal licence, renewed every "
            "three years after a practical assessment. Untrained staff must not move pallets "
            "with powered trucks, even briefly.",
            ("Am I allowed to drive the lifting machine in the warehouse without a permit?",
             "What qualification do I need before I drive the thing that lifts crates?")),
    Article("Returns", "Customers obtain a return merchandise authorisation number before "
            "shipping goods back. Items arriving without an RMA number are refused at the "
            "dock. Credit is issued after inspection, normally within ten working days.",
            ("A client wants to send something back to us, what's the process?",
             "What happens if a buyer mails back a product with no paperwork?")),
    Article("Warranty", "Instruments carry a 24-month guarantee from the date of delivery, "
            "covering defects in materials and workmanship. Damage from misuse, lightning or "
            "unauthorised opening of the housing is excluded.",
            ("How long is our kit covered if it breaks?",
             "Does the manufacturer fix it for free if someone pried the case open?")),
    Article("Transport damage", "Inspect every parcel on receipt; note dents or crushed "
            "cartons on the carrier's delivery slip before signing, photograph them and notify "
            "Logistics within 48 hours so a claim can be lodged.",
            ("The box arrived smashed, what do I do?",
             "Who do I tell if goods turn up broken?")),
    Article("Overtime", "Hours worked beyond 40 per week are paid at 150 percent, or 200 "
            "percent on public holidays. Overtime must be pre-approved in the scheduling system "
            "by the shift lead.",
            ("Do I get extra money for staying late?",
             "What's the pay bump for clocking in on Christmas?")),
    Article("Annual leave", "Full-time employees accrue 27 days of vacation per year plus "
            "public holidays. Up to five unused days can be carried into the first quarter of "
            "the next year; the rest lapses.",
            ("If I don't take all my time off, can I roll it over into January?",
             "How much time away from work do I earn in a calendar cycle?")),
    Article("Illness", "Report absence to your line manager before your shift starts. A "
            "doctor's certificate is needed from the fourth consecutive day. Sick pay continues "
            "at full salary for up to six weeks.",
            ("I'm unwell and can't come in tomorrow, who do I tell?",
             "When do I need a note from a GP if I'm poorly for several days?")),
    Article("Performance reviews", "Performance reviews take place twice a year, in March and "
            "September. Employees prepare a self-assessment; ratings are calibrated across "
            "teams before being shared.",
            ("When is my appraisal?",
             "How often does my boss formally evaluate how I'm doing?")),
    Article("Learning budget", "Each employee may spend up to 1,500 euros per year on courses, "
            "books and certifications related to their role. Requests over 500 euros need "
            "approval from the department head.",
            ("How much money can I use for classes to improve my skills?",
             "Will the firm fund a workshop or textbook for my professional development?")),
    Article("Gifts and hospitality", "Staff may accept gifts from suppliers worth no more than "
            "50 euros per year. Anything above must be declared to Compliance and usually "
            "returned. Cash or vouchers are never acceptable.",
            ("A vendor sent me a bottle of wine, can I keep it?",
             "Is it ok to take presents from companies we buy from?")),
    Article("Speaking up", "Concerns about fraud, safety violations or misconduct can be raised "
            "anonymously through the ethics hotline, run by an independent provider. "
            "Retaliation against anyone reporting in good faith is a dismissible offence.",
            ("How can I flag wrongdoing without revealing who I am?",
             "Will I get punished for telling on a colleague who is cheating?")),
    Article("Record retention", "Customer contracts are kept for ten years after expiry, "
            "invoices for seven, and job applications of unsuccessful candidates for six months "
            "before secure deletion.",
            ("How long do we hold onto CVs of people we didn't hire?",
             "When do we destroy old billing documents?")),
    Article("Printing", "Follow-me printing releases jobs only when you badge in at any "
            "device. Colour output is restricted to marketing; large-format plotting must be "
            "booked with the document centre.",
            ("Why doesn't my page come out of the copier until I tap my card?",
             "Who is permitted to use the non-black-and-white toner?")),
    Article("Meeting rooms", "Meeting rooms are reserved in the calendar. Bookings not checked "
            "in within ten minutes are released automatically. Rooms larger than twelve seats "
            "are held for external events on Thursdays.",
            ("How do I get a space for a team get-together?",
             "Someone grabbed the conference space I had, why?")),
    Article("Canteen", "The staff restaurant serves hot meals from 11:30 to 14:00 and breakfast "
            "from 07:00. Meals are subsidised; pay with your badge. Night shift workers can use "
            "the vending area.",
            ("When can I get lunch on site?",
             "Is there food available for people who work overnight?")),
    Article("Cycling", "Secure bicycle cages are located behind building C and require badge "
            "access. Showers and lockers are available in the basement. The cycle-to-work "
            "scheme spreads the cost of a new bike over twelve salary payments.",
            ("Is there somewhere safe to leave my two-wheeler when I ride in?",
             "Can the company help me buy a pushbike through payroll?")),
    Article("First aid", "Trained first aiders are listed on the noticeboard in each corridor. "
            "Kits are mounted next to every fire extinguisher; the defibrillator is at main "
            "reception. All injuries are entered in the accident book.",
            ("Someone cut their hand, where's the medical box?",
             "Where's the heart-restart machine?")),
    Article("Lost property", "Items found on site are handed to the security lodge and kept "
            "for 90 days. Unclaimed valuables are donated to charity; identity documents are "
            "passed to the police.",
            ("I left my umbrella somewhere in the building, where would it end up?",
             "What happens to stuff nobody picks up?")),
    Article("Induction", "New starters attend a two-day induction covering safety, systems and "
            "culture. Their manager prepares equipment and a buddy before the first day.",
            ("What happens during a recruit's opening week?",
             "What should I organise before someone joins my team?")),
    Article("Leaving the company", "Departing employees return laptops, badges and tokens on "
            "their last day. Accounts are disabled at 18:00 that day; personal files should be "
            "copied beforehand.",
            ("When I quit, what kit do I have to hand back?",
             "When does IT shut down someone's access after they resign?")),
    Article("Pool vehicles", "Company cars are reserved through the fleet desk and must be "
            "refuelled before return. Fines and tolls incurred during use are charged to the "
            "driver.",
            ("Who pays a speeding penalty I got in a shared automobile?",
             "How do I borrow one of the business's motors for a customer visit?")),
    Article("Mobile phones", "Roles that need to be reachable receive a smartphone with a "
            "monthly data allowance of 20 GB. Personal use is tolerated; roaming charges from "
            "private trips are deducted from salary.",
            ("Do I get a work handset?",
             "What if I use my business cell abroad on holiday?")),
    Article("Relocation", "Employees moving for an internal transfer receive removal costs, "
            "three months of temporary housing and a lump sum of 5,000 euros. Repayment applies "
            "if they resign within two years.",
            ("Will they pay for my move if I take a job at another location?",
             "Is there help with a new flat when I switch cities for the firm?")),
    Article("Referrals", "Recommending a candidate who is hired and passes probation earns a "
            "bonus of 2,000 euros, paid with the following month's salary. Referrals for "
            "director roles are excluded.",
            ("Do I get money if a friend I suggested gets the job?",
             "Is there a reward for bringing in new staff?")),
    Article("Retirement plan", "The company matches employee pension contributions up to 6 "
            "percent of base salary. Enrolment is automatic after three months; opting out is "
            "possible at any time.",
            ("Does my employer top up what I save for old age?",
             "When do I get put into the later-life savings scheme?")),
    Article("Screen users", "Display screen users are entitled to a free eye examination every "
            "two years and a contribution of 80 euros towards glasses needed specifically for "
            "computer work.",
            ("Will the firm pay for my spectacles?",
             "Can I get my sight tested at no cost because I look at a monitor all day?")),
    Article("Workstation assessments", "Anyone with back or wrist discomfort can request an "
            "ergonomic assessment; the facilities team then supplies adjustable chairs, "
            "footrests or vertical mice as recommended.",
            ("My spine hurts from sitting, can I get a better seat?",
             "Who can check whether my desk setup is bad for my body?")),
    Article("Noise", "Ear defenders are mandatory in zones marked with the blue ear symbol, "
            "where levels exceed 85 dB. Foam plugs are available at each entrance; audiometric "
            "testing is offered annually.",
            ("Do I need to block out sound in the loud parts of the plant?",
             "Where can I grab earplugs?")),
    Article("Calibration certificates", "Calibration certificates are issued for every "
            "instrument leaving the factory and stored for ten years. Customers download copies "
            "from the service portal using the serial number.",
            ("A client needs proof their gauge was checked against a standard, where is it?",
             "How can a buyer retrieve the accuracy paperwork for a device they got from us?")),
    Article("New suppliers", "Vendors are registered by Procurement after a credit check, a "
            "signed code of conduct and proof of insurance. Purchase orders cannot be raised "
            "for unregistered vendors.",
            ("How do we start buying from a company we've never used?",
             "What checks happen before we can pay a fresh seller?")),
    Article("Purchase approvals", "Orders up to 5,000 euros are approved by the budget holder; "
            "up to 50,000 by a director; above that by the CFO. Splitting orders to avoid "
            "thresholds is prohibited.",
            ("Who signs off when I want to spend a large amount?",
             "Can I break a big buy into smaller pieces to get around the limits?")),
    Article("Complaints", "Customer complaints are acknowledged within one working day and "
            "logged in the CRM. Unresolved cases escalate to the quality manager after ten "
            "days.",
            ("An angry client wrote in, how fast do we have to respond?",
             "What if a grievance from a buyer drags on for weeks?")),
    Article("Media enquiries", "Journalists are referred to Corporate Communications. Employees "
            "do not comment on products, incidents or financial results to reporters, even "
            "informally.",
            ("A newspaper called me asking questions, what should I say?",
             "Can I talk to the press about the outage?")),
    Article("Social networks", "Staff may mention their employer online but must not share "
            "confidential information, customer names or photos from inside production areas.",
            ("Can I post pictures from the factory floor on Instagram?",
             "What am I allowed to say about my job on LinkedIn?")),
    Article("Third-party code", "Open-source libraries may be used in products after Legal "
            "reviews the licence; copyleft licences require explicit sign-off from the "
            "architecture board.",
            ("Can I pull a free package from GitHub into the thing we ship?",
             "Is GPL stuff ok to include in what we sell?")),
    Article("Clean desk", "Confidential papers are locked away at the end of each day and "
            "screens are locked whenever you step away. Shredding bins are emptied weekly by a "
            "certified contractor.",
            ("Do I have to tidy away documents before going home?",
             "What do I do with sensitive printouts I no longer need?")),
    Article("Software requests", "Only applications from the approved catalogue may be "
            "installed on managed computers. Other tools are requested through the service "
            "desk and assessed by Security within five days.",
            ("Can I put a program I found online on my work machine?",
             "How do I get permission for a new app on my PC?")),
    Article("Timesheets", "Hours are booked against project codes every Friday by 16:00. "
            "Missing timesheets delay customer invoicing, so managers receive a reminder list "
            "each Monday.",
            ("When do I need to log what I worked on this week?",
             "What happens if I forget to fill in my weekly time report?")),
    Article("Identity badges", "Photo badges are printed by Security on the first day and must "
            "be worn visibly. A replacement for a lost badge costs 15 euros and deactivates the "
            "old one.",
            ("I misplaced my pass, how do I get another?",
             "Do I need to keep my staff card showing?")),
)
