#!/usr/bin/env python3
"""Build the style demo eval set `evalsets/support-replies/` (test.jsonl, train.jsonl, docs/*.md) and check it.

Larkspur Telecom is the fictional provider of the triage demo (`tools/make_demo_evalset.py`,
`evalsets/support-triage/`): same products, teams, prices and policies. There a model routes a ticket;
here it writes the reply the support team would send, in the house voice:

    Hi <first name>,

    <2 to 5 plain sentences with the facts the ticket needs from the knowledge base>

    Kind regards,
    The Larkspur Support Team

Everything below was written for this project. The knowledge base is one set of constants (`KB`) that both
the documents in docs/ and the reference replies are written from, so a fact in a reply is, by construction,
a fact in a document (the checker verifies it). Tickets are composed from hand-written templates per intent
(subjects, problem statements, slot values) with varied openings, tones, sign-offs, names and typos; a fixed
seed makes every run byte-identical.

How the splits stay apart: each intent's first problem statements are used only by test tickets and the
rest only by train tickets, and a train ticket whose words overlap a test ticket's too much (Jaccard of
word sets >= 0.6; the harness warns at 0.85) is drawn again.

Usage:
    python3 tools/make_replies_evalset.py            # write files, then run the checker
    python3 tools/make_replies_evalset.py --check    # only run the checker on what is on disk
"""
from __future__ import annotations

import json
import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "evalsets" / "support-replies"
SEED = 12
TEST_PER_INTENT = 2
TRAIN_PER_INTENT = 6
HUMAN_LABELS = 20
MAX_JACCARD = 0.6
MAX_REPLY_TOKENS = 90  # Gemma 3 tokens for the whole reply, when llama_cpp can count them

GREETING = "Hi {first},"
SIGNOFF = "Kind regards,\nThe Larkspur Support Team"

# ---------------------------------------------------------------------------------------------------------
# The knowledge base: one set of facts for the documents and the replies. Contact points use the reserved
# .example domain and 0800 555 numbers, so none of them is a real address or line.
# ---------------------------------------------------------------------------------------------------------
PHONE = "0800 555 0142"          # support line, 8:00-20:00 every day
FRAUD_PHONE = "0800 555 0111"    # fraud, lost and stolen phones, 24 hours a day
BUSINESS_PHONE = "0800 555 0199"  # Harbor business support, 24/7
MOBILE_SHORT = "150"             # support from a Larkspur mobile
STATUS_URL = "larkspur.example/status"
RETURNS_URL = "larkspur.example/returns"
RESET_URL = "larkspur.example/reset"
MOVE_URL = "larkspur.example/move"
ASSIST_URL = "larkspur.example/assist"
AVAIL_URL = "larkspur.example/availability"
COVERAGE_URL = "larkspur.example/coverage"
BUSINESS_URL = "larkspur.example/business"
PHISHING_EMAIL = "phishing@larkspur.example"
PRIVACY_EMAIL = "privacy@larkspur.example"
ADMIN_IP = "192.168.50.1"

STRAND = {"Strand 150": (150, 75, 29), "Strand 500": (500, 250, 39), "Strand 900": (900, 450, 49)}
SKYLARK_PRICE = 35
DEVICES = {  # bought outright: refund within 14 days, then the 12-month warranty
    "Halo Duo": 149, "Halo Trio": 199, "Halo pod": 79, "Ember": 69, "Ember 4K": 99,
    "Orbit S": 249, "Orbit Max": 429, "Orbit Go": 89,
}
ZONE1 = ["Spain", "France", "Portugal", "Italy", "Germany", "Greece", "Croatia", "Poland", "the Netherlands",
         "Norway", "Austria", "Iceland"]
ZONE2 = ["the USA", "Canada", "Australia", "New Zealand", "Japan"]
NO_ZONE = ["Thailand", "Morocco", "Egypt", "Mexico", "Brazil", "India", "Kenya", "Vietnam", "South Africa",
           "Peru", "Indonesia"]

DOCS: dict[str, str] = {
    "contact-us": f"""# Contacting Larkspur support

- **Support line**: {PHONE}, 8:00-20:00 every day. From a Larkspur mobile, dial {MOBILE_SHORT} (free).
- **Fraud, lost and stolen phones**: {FRAUD_PHONE}, open 24 hours a day, every day of the year.
- **Harbor business support**: {BUSINESS_PHONE}, 24/7, for every Harbor account (numbers starting HB-).
- **Chat**: in the Larkspur app, 8:00-20:00.
- **Service status**: known faults and planned work by area at {STATUS_URL} and in the app.
- **Phishing**: forward suspicious messages that pretend to be from Larkspur to {PHISHING_EMAIL}.
- **Privacy and data requests**: {PRIVACY_EMAIL}. We answer within 30 days.

Email replies come from the support team and are signed "The Larkspur Support Team". We never ask for a
password, a card number or a one-time code in an email, a text or a call.

Press enquiries go to the communications office, not to support.
""",
    "service-status-and-outages": f"""# Service status and outages

Before reporting a fault, customers can check {STATUS_URL} (or the Status tab in the app). It lists known
faults and planned work by area, with the time the fix is expected.

**If the internet stops**
1. Look at the ring light on the Beacon router. Solid red means there is no signal from the fibre line: the
   fault is on the line, not the router, and we fix it from our side.
2. Check {STATUS_URL} for a fault in your area.
3. If nothing is listed, call {PHONE} and we will test the line.

**Planned maintenance** that interrupts service is announced at least 48 hours ahead by text and email. It
does not earn an outage credit.

Outages on home plans earn a credit once the service has been off for 24 consecutive hours (see Outage
credits). Harbor business lines have their own 4-hour service level.
""",
    "outage-credits": """# Outage credits

Credits are added to the next bill automatically when the fault is closed. Customers do not need to ask.

| Plan | Credit starts after | Credit |
|---|---|---|
| Strand home fibre | 24 consecutive hours without service | one day's fee per started day |
| Skylark home wireless | 24 consecutive hours without service | one day's fee per started day |
| Harbor business fibre | 4 hours of total outage (SLA) | 10% of the monthly fee per started 4-hour block |
| Tether monthly mobile | 24 hours with no mobile service at all | one day's fee per started day |
| Kite prepaid mobile | never | Kite plans do not earn outage credits |

No credit is given for:
- outages shorter than the thresholds above;
- slow speeds or short dropouts (customers whose wired speed stays below the plan minimum for 30 days after a
  report may leave without a fee instead);
- faults caused by the customer's own equipment or wiring, or by a power cut at the premises;
- planned maintenance announced at least 48 hours in advance.
""",
    "plan-strand-fibre": f"""# Strand home fibre

Strand is Larkspur's full-fibre broadband for homes. Every Strand plan includes a loaned Beacon router.

| Plan | Download | Minimum guaranteed | Monthly |
|---|---|---|---|
| Strand 150 | 150 Mbps | 75 Mbps | €29 |
| Strand 500 | 500 Mbps | 250 Mbps | €39 |
| Strand 900 | 900 Mbps | 450 Mbps | €49 |

Contracts run 24 months. Speeds are measured on a device connected to the Beacon by cable; Wi-Fi in far rooms
is usually slower, which is a coverage matter (see Halo), not a line fault.

If the wired speed stays below the minimum guaranteed for 30 days after the customer reports it, they may
leave without an early termination fee.

Customers may use their own DNS servers: they are set on the Beacon admin page ({ADMIN_IP}) under
Advanced > DNS. Outages longer than 24 consecutive hours earn a credit.
""",
    "plan-skylark-wireless": f"""# Skylark home wireless

Skylark is home internet over Larkspur's 5G network, sold at rural addresses that Strand fibre does not reach
yet. Speeds are typically 80-250 Mbps, with no data cap, on a 12-month contract at €{SKYLARK_PRICE} per month.

Skylark uses an **outdoor receiver**: a small grey box on an outside wall, cabled to an indoor unit. The
receiver is loaned, like a Beacon. A receiver that is damaged or has no power light is replaced free of
charge; a technician fits the new one.

Heavy rain and strong wind can reduce Skylark speeds for short periods; this is expected and does not earn a
credit. A Skylark home with no internet for 24 consecutive hours gets an outage credit, as on Strand.

Moving the receiver to another wall is done by the installations team.
""",
    "plan-harbor-business": f"""# Harbor business fibre

Harbor is Larkspur's fibre plan for shops, offices and other businesses. Harbor account numbers always start
with **HB-** (for example HB-20417).

What Harbor includes:
- symmetrical 300 Mbps or 1 Gbps;
- a loaned Beacon 3 router and one static IP address (more on request);
- a service level agreement (SLA): a fix or a technician on site within **4 hours** of a total outage being
  reported, 24/7.

Harbor customers call the business line, {BUSINESS_PHONE}, open 24/7. The static IP address and invoices
are in the business portal at {BUSINESS_URL}.

Outage credits start after **4 hours** of total outage: 10% of the monthly fee for every started 4-hour
block, much sooner than the 24 hours on home plans.
""",
    "beacon-router": f"""# Beacon router

Beacon is the Wi-Fi router that comes with every Strand and Harbor plan. The current model is the Beacon 3
(white, with a ring light on top).

**Beacons are loaned, not sold.** A faulty Beacon is swapped free of charge: the replacement comes by next-working-day
courier, with a prepaid label to send the old one back in the same box.

Ring light colours:
- solid white: working normally;
- pulsing blue: starting up or updating (up to 10 minutes);
- solid red: no signal from the fibre line (a line fault, not a router fault);
- no light at all even when plugged in: the router is dead.

The admin page is at {ADMIN_IP}. The admin password is on the sticker underneath the router. The Wi-Fi name
and password can be changed there.

**Leaving Larkspur**: return the Beacon within 30 days of leaving, with the prepaid returns label in the
leaving pack. If it is not returned within 30 days, a €60 unreturned-equipment charge is added to the final
bill. If we did receive it back, that charge is a billing error and is refunded.
""",
    "beacon-troubleshooting": f"""# Beacon troubleshooting steps

**Restart** (slow or unstable Wi-Fi, after a power cut):
1. Switch the Beacon off at the wall.
2. Wait 30 seconds.
3. Switch it on. The ring light pulses blue for up to 10 minutes, then turns solid white.
If the light does not turn solid white, call {PHONE}.

**Factory reset** (forgotten Wi-Fi password, settings changed by mistake):
1. With the Beacon on, press and hold the reset button on the back with a paperclip for 10 seconds, until
   the ring light flashes blue.
2. The Wi-Fi name and password go back to the ones on the sticker underneath.
3. Change them again at {ADMIN_IP} if you wish.

A solid red light is not fixed by a restart or a reset: check {STATUS_URL}.
""",
    "product-halo-mesh": """# Halo mesh Wi-Fi

Halo is Larkspur's mesh Wi-Fi kit: small round pods placed around the home so Wi-Fi reaches every room. It
works alongside a Beacon router and does not replace the broadband line.

- Halo Duo: two pods, €149. Halo Trio: three pods, €199. Extra single pod: €79.

Halo is **bought outright**: the refund policy for purchased devices applies.

- An **orange light** means the pod cannot reach the other pods. Move it closer: pods work best no more than
  two rooms apart. The light turns white once it reconnects.
- **Adding a pod**: plug it in, hold the button on its base for 5 seconds, then follow Halo > Add pod in the
  Larkspur app.
- Pods getting warm is normal. A pod that smells of burning, smokes or is too hot to touch must be unplugged
  at once and reported as a safety issue.
""",
    "product-ember-tv": """# Ember TV box

Ember is Larkspur's streaming box. It plugs into a TV by HDMI and runs streaming apps over the broadband.
Subscriptions to the apps on it are billed by each app provider, not by Larkspur; the provider handles
cancelling and questions about those charges.

- Ember (HD): €69. Ember 4K: €99, with the voice remote. Replacement voice remote: €15, in the app.

Ember boxes are **bought outright**: the refund policy for purchased devices applies. Lost remotes are not
covered by the warranty.

Tips:
- Remote not responding: hold Home + Back together for 5 seconds to re-pair it. If that fails, fit new
  batteries.
- Box stuck on the flame logo: unplug it from the power for 30 seconds, then plug it back in.
- Buffering on every app at once usually means a slow broadband line, not a box fault.
""",
    "product-orbit-handsets": f"""# Orbit handsets

Orbit is Larkspur's own range of smartphones: Orbit S (€249), Orbit Max (€429) and Orbit Go (€89, for Kite).

Orbit phones are **bought outright**: the refund policy for purchased devices applies. Cracked screens and
water damage are accidental damage, which the warranty never covers; we can quote a paid repair, requested
at {RETURNS_URL}.

A lost or stolen phone: call {FRAUD_PHONE} (24 hours a day) so the SIM and the handset are blocked.

A phone that swells, smokes or gets too hot to hold must be switched off at once and reported on {PHONE}.
Swollen batteries must not go in a recycling bag: a Larkspur shop packs them safely.
""",
    "returns-and-refunds": f"""# Returns and refunds

**Devices bought from Larkspur** (Halo, Ember, Orbit): full refund when the device is returned within
**14 days of delivery**, for any reason, as long as it is not damaged. Start a return at {RETURNS_URL} to get
a prepaid label.

From day 15 there is no refund: a faulty device is repaired or replaced free under the **12-month warranty**
(claims also start at {RETURNS_URL}). Accidental damage is not covered.

**Loaned devices** (Beacon routers, Skylark receivers) are never bought, so there is nothing to refund;
faulty ones are swapped free.

**Billing errors are always refunded**: duplicate charges (a Kite top-up taken twice included), a price
higher than the contract price, any charge after a confirmed cancellation, charges made by someone who took
over the account, and a €60 unreturned-equipment charge for a router we did receive.

Refunds reach the original payment method within 5 working days.
""",
    "orders-and-deliveries": f"""# Orders and deliveries

Orders from the Larkspur shop arrive within 3 working days by courier. A tracking link is sent by text on
the day of dispatch.

If an order has not arrived after 5 working days, we trace the parcel and send a replacement if it cannot be
found. A missing delivery is not a refund case.

Returns and warranty claims start at {RETURNS_URL}.
""",
    "installations-and-moves": f"""# Installations, moves and technician visits

**New connections**: Strand fibre is normally live 10 working days after the order; Skylark after 5 working
days. The customer picks a morning (8-13) or afternoon (13-18) slot.

**Rescheduling**: a visit can be moved in the Larkspur app up to 24 hours before the slot; later than that,
call {PHONE}.

**Moving home**: tell us at {MOVE_URL} at least 30 days before the move. The plan moves with the customer if
the new address can be served. If it cannot, the early termination fee is waived.

**Technician no-shows**: if our technician misses the booked slot without at least 24 hours' notice, a
**€30 credit** is added to the account automatically.

**Customer not home**: a €40 missed-appointment fee is charged, and it is not refundable.

**Damage or mess** left by an installation is put right free of charge on a return visit. A cable left
hanging or lying across a path is a safety hazard: customers should keep clear and call {PHONE}; a
technician makes it safe the same day.
""",
    "mobile-tether-kite": f"""# Tether and Kite mobile plans

**Tether** is the monthly plan (12 or 24 months, SIM-only or with an Orbit phone). Complete loss of Tether
service for 24 hours earns an outage credit of one day's fee per started day.

**Kite** is prepaid. Top-ups of €10, €20 or €30 are not refundable once applied, even if sent to the wrong
number. A top-up payment taken twice is a duplicate charge and is refunded. Kite plans do not earn outage
credits.

Both plans:
- eSIM activation normally finishes within 2 hours; restarting the phone on Wi-Fi helps.
- Bringing a number from another network takes one working day once we have the porting code from the old
  network.
- Voicemail: dial 121.
- Weak signal indoors: check {COVERAGE_URL} and switch on Wi-Fi Calling in the phone's settings.
- A lost or stolen phone: call {FRAUD_PHONE}; a new SIM with the same number is sent free.
""",
    "roaming-wander-pass": """# Wander roaming pass

Wander is the daily roaming pass for Tether and Kite customers: their normal allowance abroad.

- **Zone 1** (Europe): €4 per day.
- **Zone 2** (USA, Canada, Australia, New Zealand, Japan): €9 per day.
- Everywhere else, including cruise ships and flights: no Wander pass. Usage is charged per MB and per minute
  at the rates on the roaming price list, and those charges are not refundable.

The pass is charged only on days the phone is used abroad. Switch it on in the Larkspur app or text
WANDER ON to 5050.

If Wander was on and the customer was still charged per MB inside Zone 1 or 2, that is a billing error and
is refunded.
""",
    "security-and-fraud": f"""# Security and fraud

Call the fraud line, **{FRAUD_PHONE}** (24 hours a day), at once when:
- the phone suddenly shows "No SIM" or "SOS only" without a new SIM being ordered (possible SIM swap);
- the number was moved to another network without a request;
- there are logins, password or email changes, orders or top-ups the customer does not recognise;
- a phone is lost or stolen (we block the SIM and the handset);
- the customer acted on a phishing message (gave a password, a one-time code or card details).

Larkspur never asks for card details or one-time codes by text, email or phone. Customers can forward a
suspicious message to {PHISHING_EMAIL} and then delete it.

After a takeover, customers should also choose a new password at {RESET_URL}. Charges made by someone who
took over the account are refunded.
""",
    "account-and-login": f"""# Account and login

**Forgotten password**: reset it at {RESET_URL}. We send a code by text to the mobile number on the account.
If that number has changed, call {PHONE} and we verify the customer another way.

**Change of account holder** and contact details: in the Larkspur app under Profile.

**Privacy and data requests** (a copy of your data, deleting it): write to {PRIVACY_EMAIL}. We answer within
30 days.
""",
    "addon-sentinel": """# Sentinel security add-on

Sentinel is an optional add-on for Strand, Skylark and Harbor broadband, €4 per month. It runs on the
network, so it protects every device in the home:

- it blocks known malware and scam websites; a safe site blocked by mistake can be allowed under
  Sentinel > Allowed sites in the Larkspur app;
- parental controls and bedtime schedules are set under Sentinel > Family in the app;
- breach alerts: a message when the customer's email address appears in a data leak from another company.
  The customer should change the password for that service and anywhere they reused it.

**Cancelling**: within 30 days of switching it on, Sentinel can be cancelled for a full refund of everything
paid for it. After 30 days it can be cancelled at any time, but months already charged are not refunded.
""",
    "billing-and-payments": f"""# Billing and payments

Bills are issued on the 1st of each month and collected by direct debit on the 8th. Customers can also pay by
card in the app. The billing date and the payment card can be changed in the app under Billing.

**Paper bills** cost €1.50 per month; online bills are free.

**Failed payments**: we retry after 3 days and send a reminder. If a bill is unpaid 21 days after the due
date, a €10 late-payment fee is added and service can be suspended.

**Plan changes**: upgrades start immediately; downgrades start on the next bill. There is no part refund
for a downgrade.

**Cancelling** needs 30 days' notice, given in the app or on {PHONE}. Leaving during the minimum term costs
an early termination fee of 50% of the remaining monthly fees.

Billing errors are refunded to the original payment method within 5 working days.
""",
    "priority-assist-register": f"""# Priority Assist register

Priority Assist is a free register for customers who depend on their Larkspur service for their health or
safety: a fall alarm or telecare pendant on the broadband, a heart, glucose or oxygen monitor that reports to
a hospital, or someone who relies on the phone to call for help.

Customers join at {ASSIST_URL} or by calling {PHONE}; a carer or family member can register on their
behalf. Any loss of service for a registered customer is handled as urgent, whatever the plan.

Priority Assist does not change refund rules or outage credit thresholds.
""",
    "device-recycling": """# Device recycling

Larkspur takes back old phones, routers and TV boxes of any brand for free recycling.

1. Request a free recycling bag in the Larkspur app or pick one up in a Larkspur shop.
2. Remove SIM and memory cards and reset the device.
3. Post the bag or drop it at any shop.

Working devices are refurbished and donated to schools. Swollen or damaged batteries must not go in the bag:
take them to a shop, where staff pack them safely.

Recycling is separate from returning a loaned Beacon router or Skylark receiver when leaving Larkspur.
""",
    "network-upgrade-roadmap": f"""# Network upgrade roadmap

Larkspur publishes where it is building next. Dates are targets and can move with planning permission and
weather.

**This year**: fibre in Dunmere North and the Harrow estate (about 9,000 homes); doubling capacity at Skylark
sites in the western hills.

**Next year**: fibre to 40 villages now served only by Skylark; those customers will be offered a free switch
to Strand. A Strand 2000 trial in Carrow. New mobile coverage in the Kell Valley.

To check fibre at an address, or register interest, customers use the availability checker at {AVAIL_URL}.
""",
    "about-larkspur": """# About Larkspur Telecom

Larkspur Telecom was founded in 2009 by three engineers and started as a wireless internet provider for farms
in the hills around Carrow. It grew by buying two regional fibre networks in 2016 and 2019.

Today Larkspur serves around 410,000 homes and 18,000 businesses and runs its own mobile network. Head office
is in the old mill building in Carrow; support teams work from Carrow, Dunmere and from home.

Our values: plain speaking (prices without asterisks), local first (technicians live in the areas they
cover) and fix it once. Larkspur is owned by its founders and an employee trust.
""",
    "community-forum-guidelines": """# Community forum guidelines

The Larkspur Community forum is a place for customers to help each other, share set-up tips and suggest
features. Staff moderators read it on working days, but the forum is not a support channel and posts there
do not open a ticket.

Please search before posting, keep it friendly, never post account numbers, addresses or passwords, and mark
the reply that solved your problem as the answer. Members earn badges ("Helper", "Expert", "Legend") for
accepted answers. Feature ideas with the most votes are reviewed every quarter.
""",
}

# ---------------------------------------------------------------------------------------------------------
# Customers: given name first (the greeting uses the first word of `customer`), from many places.
# ---------------------------------------------------------------------------------------------------------
NAMES = """Aoife Brennan|Siobhán Kavanagh|Ciarán Byrne|Niamh Walsh|Oisín Doyle|Declan Murphy|Tomás Ó Súilleabháin
|Gráinne Mac Giolla|Zoë Martin|Chloé Dubois|Maëlle Lefèvre|Inès Moreau|Björn Lindqvist|Søren Madsen|Ingrid Haugen
|Aino Virtanen|Guðrún Jónsdóttir|Małgorzata Kowalska|Łukasz Nowak|Ewa Zielińska|Jiří Horák|Hana Nováková
|Eszter Szabó|Zsófia Tóth|Ana Popescu|Mihai Ionescu|Olena Shevchenko|Dmitri Volkov|Anastasia Ivanova
|Kai Müller|Jürgen Weber|Lena Schmidt|Anneke de Vries|Sanne Bakker|Pieter Janssens|José García|Lucía Fernández
|Begoña Ortiz|Iñaki Etxeberria|Carmen Ruiz|Diego Morales|Valentina Gómez|João Silva|Conceição Alves
|Mateus Oliveira|Giulia Rossi|Matteo Bianchi|Eleni Papadopoulou|Nikos Georgiou|Ayşe Yılmaz|Yusuf Demir
|Elif Kaya|Fatima Al-Sayed|Omar Haddad|Leila Rahimi|Reza Karimi|Noa Levi|Eitan Cohen|Ngozi Okafor|Chidi Eze
|Amara Nwosu|Kwame Mensah|Abena Owusu|Tendai Moyo|Thandiwe Dlamini|Sipho Ndlovu|Selam Tesfaye|Abebe Girma
|Wanjiru Kamau|Priya Sharma|Arjun Menon|Aarav Patel|Anjali Gupta|Rohan Iyer|Sunita Rao|Farhan Hossain
|Nasrin Akter|Imran Qureshi|Ayesha Siddiqui|Mei Chen|Wei Zhang|Hiroshi Tanaka|Yuki Sato|Ji-woo Park
|Seo-yeon Kim|Linh Tran|Bao Nguyen|Somchai Wongsakul|Maricel Santos|Putri Lestari|Aroha Ngata|Rangi Parata
|Malia Fonoti|Keoni Kahale|Bronwyn Hughes|Gareth Lloyd|Rhiannon Price|Dafydd Evans|Eilidh MacLeod
|Callum Fraser|Morag Campbell|Sarah O'Neill|Margaret Doherty|Patrick Quinn|Bernadette Fahy|Liam Kearney
|Emma Clarke|Jack Dunne|Grace Fitzgerald|Tom Hennessy|Ruth Okonkwo|Samuel Adeyemi|Isabel Torres|Rafael Mendes
|Nadia Benali|Karim Mansour|Astrid Berg|Freya Lund|Elena Marchetti|Pavel Novak|Katarzyna Wójcik|Andrés Castillo
|Lucas Ferreira|Hamid Sultani|Mariam Yousef|Kofi Boateng|Adaeze Nnamdi""".replace("\n", "")
CUSTOMERS = [n.strip() for n in NAMES.split("|")]

PLACES = ["Carrow", "Dunmere", "Millbrook", "Fenwick", "the Harrow estate", "Kell Valley", "Ellerby", "Ashby Road",
          "Quay Street", "Dunmere North", "Brackenhill", "Lowtown", "St Anne's Park", "Mill Lane", "Castlegate"]
VILLAGES = ["Ellerby", "Fenwick", "Kell Bridge", "Ardnagh", "Little Carrow", "Thornby", "Glenmoy", "Ravensholm"]
BUSINESSES = ["the shop", "our café", "the office", "our salon", "the practice", "the bakery", "our studio",
              "the warehouse", "our guesthouse", "the pharmacy", "our garage"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def hb(rng: random.Random) -> str:
    return f"HB-{rng.randint(10000, 99999)}"


def clock(rng: random.Random) -> str:
    return rng.choice(["7am", "8.30", "9 this morning", "half ten", "lunchtime", "2pm", "about 4", "teatime",
                       "6pm", "around 9 last night", "midnight"])


# ---------------------------------------------------------------------------------------------------------
# Intents. Each: the team that answers it, the documents its facts come from, slot values, subject and body
# templates, and the reply (sentences) with the exact fact strings it must contain.
# ---------------------------------------------------------------------------------------------------------
Reply = tuple[list[str], list[str]]


@dataclass
class Intent:
    key: str
    team: str
    docs: list[str]
    slots: Callable[[random.Random], dict]
    subjects: list[str]
    bodies: list[str]  # the first TEST_PER_INTENT are used only by test tickets
    reply: Callable[[dict], Reply]
    product: Callable[[dict], str] = field(default=lambda s: s.get("product", "Not sure"))


INTENTS: list[Intent] = []


def intent(key: str, team: str, docs: str, slots: Callable[[random.Random], dict], subjects: list[str],
           bodies: list[str], product: Callable[[dict], str] | None = None):
    def deco(fn: Callable[[dict], Reply]) -> Callable[[dict], Reply]:
        INTENTS.append(Intent(key, team, docs.split(), slots, subjects, bodies, fn,
                              product or (lambda s: s.get("product", "Not sure"))))
        return fn
    return deco


def home_plan(rng: random.Random) -> str:
    return rng.choice([*STRAND, *STRAND, "Skylark"])


# -- network -------------------------------------------------------------------------------------------------
@intent("outage_short", "network", "service-status-and-outages beacon-router outage-credits",
        lambda r: {"product": home_plan(r), "place": r.choice(PLACES), "hours": r.randint(1, 9), "clock": clock(r)},
        ["Internet down", "No internet", "is there an outage in {place}?", "Broadband not working",
         "Nothing loads", "Connection gone"],
        ["No internet since {clock}. Every device says connected but nothing loads. Is there a problem in {place}?",
         "Our broadband went off about {hours} hours ago and hasn't come back. The light on the router is red. What do I do?",
         "internet is down again, {product}. nothing changed here. is it you or me",
         "Is there a fault in {place}? We lost the internet at {clock} and the router light has gone red.",
         "The whole house lost the internet {hours} hours ago. I've turned the router off and on twice already.",
         "Been offline since {clock}. Wi-Fi shows full bars on the phone but no internet at all. Please advise.",
         "We have no broadband at the moment, it stopped at {clock}. My kids need it for homework tonight."])
def _(s: dict) -> Reply:
    return (["Sorry your internet is down.",
             f"You can check for a known fault in your area at {STATUS_URL}.",
             "If the ring light on your Beacon is solid red, the fault is on the line and we fix it from our side.",
             "If the service is off for 24 hours in a row, a credit is added to your bill automatically."],
            [STATUS_URL, "solid red", "24 hours"])


@intent("outage_credit", "billing", "outage-credits",
        lambda r: {"product": home_plan(r), "days": r.choice(["two", "three", "four", "2", "3", "5"]),
                   "day": r.choice(WEEKDAYS), "place": r.choice(PLACES)},
        ["Compensation for outage", "{days} days without internet", "Credit for the outage?",
         "Refund for days with no service", "outage last week"],
        ["We had no internet for {days} days last week. It's working again now, but I don't see why I should pay for days I had nothing. What am I owed?",
         "Internet was out from {day} until two days later, {product}. Do I get anything back for that?",
         "i want compensation for the {days} days with no broadband. i pay every month for a service i didnt get",
         "Could you tell me whether the outage in {place} last week means a credit on my account? We were off for {days} days.",
         "The fault on our line is fixed at last after {days} days. Will the credit appear automatically or do I have to claim it?",
         "Three full days with no internet in {place}. Back now. Please confirm the refund.",
         "My connection was dead from {day} evening for {days} days. Do I have to fill in a form to get money back?"])
def _(s: dict) -> Reply:
    return (["We are sorry for the days without service.",
             "When home broadband is off for 24 consecutive hours, you get a credit of one day's fee for each started day.",
             "It is added to your next bill automatically when the fault is closed, so you do not need to claim it."],
            ["24 consecutive hours", "one day's fee", "next bill"])


@intent("harbor_outage", "network", "plan-harbor-business contact-us outage-credits",
        lambda r: {"product": r.choice(["Harbor 1 Gbps", "Harbor 300"]), "acct": hb(r), "biz": r.choice(BUSINESSES),
                   "hours": r.choice(["an hour", "two hours", "40 minutes", "since opening", "3 hours"])},
        ["{acct} down", "Business line offline", "URGENT {acct} no internet", "Total outage at {biz}",
         "No connection - business account"],
        ["{acct}. Internet at {biz} has been completely down for {hours}. Card machines are offline. How quickly can you fix this?",
         "Our business connection went down {hours} ago. Account {acct}. We can't take payments. Please send someone.",
         "Total outage on {acct}, {hours} so far. We are losing money every minute.",
         "No internet at {biz} at all, {hours} now. We restarted the router. It's a Harbor line, {acct}.",
         "{biz} is offline, nothing works, {hours}. Acct {acct}. What is your fix time for business customers?",
         "Account {acct} - complete loss of service for {hours}. Our booking system and phones both need it.",
         "Can someone ring me? {biz} has had no internet for {hours}, account {acct}."])
def _(s: dict) -> Reply:
    return (["Sorry your business is offline.",
             f"Please call the Harbor business line on {BUSINESS_PHONE}, open 24/7; a fix or a technician is due within 4 hours.",
             "After 4 hours, you get a credit of 10% of the monthly fee per started 4-hour block."],
            [BUSINESS_PHONE, "4 hours", "10%"])


def _slow_slots(r: random.Random) -> dict:
    plan = r.choice(list(STRAND))
    top, low, _ = STRAND[plan]
    return {"product": plan, "speed": r.randint(low // 5, low - 5), "top": top, "when": r.choice(
        ["in the evenings", "all week", "since Tuesday", "for about a fortnight", "most days", "since the storm"])}


@intent("slow_strand", "network", "plan-strand-fibre",
        _slow_slots,
        ["Slow speeds", "Not getting my speed", "{product} slow", "speed well below what I pay for",
         "Broadband crawling"],
        ["I pay for {product} but I'm getting about {speed} Mbps {when}. That's nowhere near {top}. What can you do?",
         "speed tests show {speed} mbps on {product} {when}. is this normal??",
         "Hi, our broadband has been slow {when}, around {speed} Mbps. Netflix keeps buffering. Can you check the line?",
         "{product} here. I measured {speed} Mbps several times {when}. Is there a minimum you guarantee?",
         "Really poor speeds {when}: {speed} Mbps on a {top} plan. I want to know my options.",
         "Downloads take forever. {speed} Mbps {when} on {product}. Is something wrong on your side?",
         "My speed has dropped to roughly {speed} Mbps {when}. Is that below the guaranteed speed for {product}?"])
def _(s: dict) -> Reply:
    low = STRAND[s["product"]][1]
    return (["Please run the speed test on a device connected to your Beacon by cable, as Wi-Fi in far rooms is usually slower.",
             f"{s['product']} guarantees at least {low} Mbps.",
             "If your wired speed stays below that for 30 days after you report it, you can leave without an early termination fee."],
            [f"{low} Mbps", "cable", "30 days"])


@intent("skylark_weather", "network", "plan-skylark-wireless outage-credits",
        lambda r: {"product": "Skylark", "weather": r.choice(["windy", "rainy", "stormy", "wet and windy"]),
                   "place": r.choice(VILLAGES), "mins": r.choice(["a few minutes", "ten minutes", "half an hour"])},
        ["Skylark drops in bad weather", "Connection and weather", "Internet cuts out when it's {weather}",
         "Skylark unreliable", "rain = no internet?"],
        ["Every time it gets {weather} the Skylark connection drops for {mins} and then comes back. Is that normal?",
         "We're on Skylark out in {place}. When the weather is {weather} the speed falls off a cliff. Anything you can do?",
         "skylark goes slow whenever its {weather}. is this just how it is",
         "Is it expected that Skylark struggles on {weather} days? We lose it for {mins} at a time in {place}.",
         "Our 5G home internet keeps cutting out in {weather} weather. It comes back after {mins}. Should I be asking for a refund?",
         "Not a complaint exactly, but the internet in {place} is poor whenever it's {weather}. The receiver looks fine."])
def _(s: dict) -> Reply:
    return (["Heavy rain and strong wind can reduce Skylark speeds for short periods, which is expected and does not earn a credit.",
             "If the connection is off for 24 consecutive hours, a credit is added to your next bill.",
             "If the outdoor receiver looks damaged or has no power light, we replace it free of charge."],
            ["24 consecutive hours", "outdoor receiver", "free of charge"])


@intent("harbor_static_ip", "network", "plan-harbor-business",
        lambda r: {"product": r.choice(["Harbor 1 Gbps", "Harbor 300"]), "acct": hb(r),
                   "use": r.choice(["remote access to our NAS", "the CCTV recorder", "our VPN", "a small web server",
                                    "the alarm company"])},
        ["Static IP", "What is our static IP?", "Static IP address for {acct}", "Need a second static IP",
         "IP address question"],
        ["Quick one: where do I find our static IP address? It's for {use}. Account {acct}.",
         "Our IT contractor needs the static IP of the office line ({acct}) to set up {use}.",
         "How do I see which static IP we have, and can we get more than one? {acct}",
         "We need the fixed IP on {acct} for {use}. Where is it shown?",
         "Hello, does our Harbor plan come with a static IP? If so, what is it? Need it for {use}.",
         "Can you tell me our static IP please, account {acct}. Setting up {use}."])
def _(s: dict) -> Reply:
    return ([f"Your static IP address is shown in the business portal at {BUSINESS_URL}.",
             "Harbor includes one static IP address, and more are available on request.",
             f"For help with the set-up, call the business line on {BUSINESS_PHONE}."],
            [BUSINESS_URL, "one static IP"])


@intent("custom_dns", "network", "plan-strand-fibre beacon-router",
        lambda r: {"product": r.choice(list(STRAND)), "dns": r.choice(["1.1.1.1", "8.8.8.8", "9.9.9.9", "my Pi-hole"])},
        ["Custom DNS", "Can I change DNS?", "DNS servers on Strand", "Using {dns} as DNS"],
        ["Am I allowed to use my own DNS servers (e.g. {dns}) on a Strand connection, or does Larkspur force its own?",
         "How do I set {dns} as the DNS server on the Beacon?",
         "I want to point my home network at {dns}. Where is the DNS setting on your router?",
         "Can I change the DNS on my {product} line? Want to use {dns}.",
         "is it possible to use {dns} instead of your dns? where do i change it",
         "Trying to set up {dns} for the household. Does the Beacon let me change DNS?"])
def _(s: dict) -> Reply:
    return (["Yes, you can use your own DNS servers on Strand.",
             f"Log in to your Beacon at {ADMIN_IP} and enter them under Advanced > DNS.",
             "The admin password is on the sticker underneath the router."],
            [ADMIN_IP, "Advanced > DNS"])


@intent("planned_maintenance", "network", "service-status-and-outages outage-credits",
        lambda r: {"product": home_plan(r), "day": r.choice(WEEKDAYS), "hours": r.choice(["3", "4", "5", "six"]),
                   "place": r.choice(PLACES)},
        ["Planned works outage", "Credit for maintenance?", "Maintenance on {day}", "Internet off for works",
         "Planned outage in {place}"],
        ["You texted about planned maintenance in {place} and the internet was off for {hours} hours on {day}. Do I get a credit for that?",
         "Got a message saying there's planned work in our area on {day}. How much notice do you give, and is there compensation?",
         "the planned works on {day} knocked us off for {hours} hours. surely that deserves money back",
         "Why was I not compensated for the maintenance outage on {day}? It was {hours} hours.",
         "Is there a list of planned work in {place}? We had an outage on {day} that I'm told was planned.",
         "Hi, how far in advance do you warn customers about maintenance? We lost the line for {hours} hours on {day}."])
def _(s: dict) -> Reply:
    return (["Planned maintenance is announced at least 48 hours ahead by text and email.",
             "Because it is announced in advance, it does not earn an outage credit.",
             f"You can see planned work in your area at {STATUS_URL}."],
            ["48 hours", STATUS_URL])


@intent("fibre_availability", "installations", "network-upgrade-roadmap plan-skylark-wireless",
        lambda r: {"product": "Skylark", "village": r.choice(VILLAGES)},
        ["When is fibre coming?", "Fibre in {village}", "Switching from Skylark to fibre", "Fibre availability"],
        ["Any idea when fibre will reach {village}? We're on Skylark and would switch tomorrow.",
         "Is there a date for Strand in {village}? And would I have to pay to switch from Skylark?",
         "when will {village} get fibre. tired of skylark in the evenings",
         "Our neighbours in the next village got fibre. Is {village} on the list? We're Skylark customers.",
         "How do I find out if fibre is available at my address in {village}?",
         "I'd like to register interest in fibre for {village}. Is there a form?"])
def _(s: dict) -> Reply:
    return ([f"You can check fibre at your address and register interest at {AVAIL_URL}.",
             "Next year we plan to bring fibre to 40 villages now served only by Skylark.",
             "Skylark customers there will be offered a free switch to Strand."],
            [AVAIL_URL, "40 villages", "free switch"])


# -- hardware --------------------------------------------------------------------------------------------------
def _beacon(r: random.Random) -> dict:
    return {"product": r.choice(["Beacon 3 router", "Beacon 3 router", "Beacon 2 router"]),
            "room": r.choice(["the back bedroom", "the kitchen", "upstairs", "the garden office", "the attic"]),
            "days": r.choice(["two days", "a week", "since Sunday", "since the power cut"])}


@intent("beacon_restart", "hardware", "beacon-troubleshooting",
        _beacon,
        ["How do I restart the router?", "Wi-Fi unstable", "Router playing up", "Beacon keeps dropping Wi-Fi",
         "Power cut and now the Wi-Fi is odd"],
        ["The Wi-Fi has been flaky {days}, especially in {room}. What's the right way to restart the Beacon?",
         "After the power cut the router is acting strange. Should I restart it, and how?",
         "wifi keeps dropping {days}. do i just turn the router off and on?",
         "Can you tell me how to properly reboot the Beacon? Devices in {room} keep losing Wi-Fi.",
         "The router has been sluggish {days}. Someone said to restart it. How long should I leave it off?",
         "What is the correct way to power cycle the Beacon? The light did something odd after a restart.",
         "Wi-Fi on and off {days}. I'm not very technical, please explain step by step how to restart the router."])
def _(s: dict) -> Reply:
    return (["Please switch the Beacon off at the wall, wait 30 seconds and switch it on again.",
             "The ring light pulses blue for up to 10 minutes while it starts, then turns solid white.",
             f"If it does not turn white, call us on {PHONE}."],
            ["30 seconds", "10 minutes", PHONE])


@intent("beacon_factory_reset", "hardware", "beacon-troubleshooting",
        _beacon,
        ["Forgot Wi-Fi password", "Factory reset router", "Reset Beacon to default", "Locked out of the Wi-Fi"],
        ["I changed the Wi-Fi password months ago and nobody remembers it. How do I reset the router back to the original one?",
         "How do I factory reset the Beacon? My son fiddled with the settings and now nothing connects.",
         "forgot the wifi password, how do i reset the router",
         "Is there a way to put the Beacon back to factory settings? I changed too many things.",
         "We've lost the Wi-Fi password we set. Can the router be reset to what's printed on it?",
         "How long do I hold the reset button on the Beacon for, and what happens to the password?"])
def _(s: dict) -> Reply:
    return (["Hold the reset button on the back of the Beacon with a paperclip for 10 seconds, until the ring light flashes blue.",
             "The Wi-Fi name and password then go back to the ones on the sticker underneath.",
             f"You can change them again at {ADMIN_IP}."],
            ["10 seconds", "sticker", ADMIN_IP])


@intent("wifi_password_change", "hardware", "beacon-router",
        _beacon,
        ["Change Wi-Fi name", "How to change the Wi-Fi password", "New Wi-Fi password", "Rename my network"],
        ["How do I change the Wi-Fi password? An ex-housemate still has it.",
         "I'd like to rename our Wi-Fi network to something less obvious. Where do I do that?",
         "how to change wifi name and password on beacon",
         "Where can I change the Wi-Fi password on the router you sent? I want something easier to type.",
         "Can I set my own Wi-Fi password on the Beacon, and how?",
         "Need to change the network password after lending it to guests. Steps please."])
def _(s: dict) -> Reply:
    return ([f"You can change the Wi-Fi name and password on the Beacon admin page at {ADMIN_IP}.",
             "The admin password is on the sticker underneath the router.",
             "Your devices will need to reconnect with the new password."],
            [ADMIN_IP, "sticker"])


@intent("beacon_dead", "hardware", "beacon-router",
        _beacon,
        ["Router dead", "No lights on the Beacon", "Router won't turn on", "Beacon completely dead"],
        ["The router has no lights at all. I've tried a different socket. Nothing. We have no internet.",
         "Our Beacon died overnight, there's no light on it whatsoever even though it's plugged in.",
         "router is dead. no light. tried everything",
         "After a thunderstorm the Beacon won't switch on. The ring light stays off in every socket.",
         "No power light on the router {days}. Is it broken? We have no internet without it.",
         "The Beacon just went dark and won't come back on. Can you send a new one?",
         "Dead router here: no ring light, no Wi-Fi, nothing. Checked the plug and the fuse."])
def _(s: dict) -> Reply:
    return (["Sorry your Beacon has stopped working.",
             "As it shows no light at all, we will send a replacement by next-working-day courier, free of charge.",
             "Please return the old one in the same box with the prepaid label."],
            ["next-working-day courier", "free of charge", "prepaid label"])


@intent("beacon_red_light", "network", "beacon-router service-status-and-outages",
        _beacon,
        ["Red light on router", "Ring light red", "Router light is red", "What does red mean?"],
        ["The ring light on the router has gone solid red and nothing works. Is the router broken?",
         "Red light on the Beacon since this morning. Do I need a new router?",
         "router light red. no internet. help",
         "What does a red ring on the Beacon mean? It's been like that {days} on and off.",
         "Our router shows a steady red light and we're offline. I've restarted it already.",
         "Should I reset the router? The light is red and there's no internet."])
def _(s: dict) -> Reply:
    return (["A solid red ring light means no signal from the fibre line, so the router itself is fine.",
             f"Please check {STATUS_URL} for a known fault in your area.",
             f"If none is listed, call us on {PHONE} and we will test the line."],
            ["solid red", STATUS_URL, PHONE])


@intent("beacon_return", "hardware", "beacon-router",
        lambda r: {"product": r.choice(["Beacon 3 router", "Beacon 2 router"]),
                   "why": r.choice(["moving abroad", "switching provider", "moving in with my partner", "closing the shop"])},
        ["Returning the router", "What do I do with the Beacon?", "Leaving Larkspur - router",
         "Do I need to send the router back?"],
        ["I'm leaving Larkspur because I'm {why}. Do I need to send the router back, and how?",
         "What happens to the Beacon when I cancel? I'm {why}.",
         "leaving at the end of the month ({why}). how do i return the router",
         "Do I keep the router when my contract ends? I'm {why}.",
         "How long do I have to return the Beacon after leaving? Is there a charge if I'm late?",
         "I've cancelled as I'm {why}. Where do I post the router?"])
def _(s: dict) -> Reply:
    return (["Please return your Beacon within 30 days of leaving, using the prepaid returns label in your leaving pack.",
             "If it is not returned within 30 days, a €60 unreturned-equipment charge is added to your final bill."],
            ["30 days", "€60", "prepaid returns label"])


@intent("unreturned_charge", "billing", "beacon-router returns-and-refunds",
        lambda r: {"product": r.choice(["Beacon 3 router", "Beacon 2 router", "Skylark receiver"]),
                   "when": r.choice(["in March", "three weeks ago", "the day after I left", "last month"])},
        ["€60 charge for router I returned", "Wrongly charged for equipment", "Unreturned equipment charge",
         "Charged €60 - router was sent back"],
        ["You've charged me €60 for not returning the router, but I posted it back {when}. I have the receipt.",
         "My final bill has an unreturned-equipment charge. The kit went back {when}. Please remove it.",
         "why am i being charged 60 euro, i sent the router back {when}",
         "I returned the equipment {when} with your prepaid label, yet there's a €60 charge on my final bill.",
         "There's a mistake on my last bill: a charge for the router, which you got back {when}.",
         "Please refund the €60 equipment charge. The device was returned {when}."])
def _(s: dict) -> Reply:
    return (["Sorry about the €60 charge.",
             "If we received the equipment back, the unreturned-equipment charge is a billing error and we refund it.",
             "Please reply with the tracking number from your returns receipt.",
             "The refund reaches your original payment method within 5 working days."],
            ["€60", "billing error", "5 working days"])


def _halo(r: random.Random) -> dict:
    return {"product": r.choice(["Halo Duo", "Halo Trio", "Halo pod"]),
            "room": r.choice(["the loft", "the back bedroom", "the garage", "the kitchen", "the conservatory"])}


@intent("halo_orange", "hardware", "product-halo-mesh",
        _halo,
        ["Halo pod orange light", "Orange light on pod", "Mesh pod not working", "Halo pod in {room}"],
        ["The Halo pod in {room} has an orange light and the Wi-Fi there is rubbish. What does orange mean?",
         "One of our Halo pods shows orange all the time. The others are white.",
         "halo pod orange light whats wrong with it",
         "I moved a pod to {room} and now it's orange. Is it faulty?",
         "Why is my mesh pod glowing orange? It's in {room}.",
         "Pod in {room} went orange after we rearranged the furniture. How do I fix it?"])
def _(s: dict) -> Reply:
    return (["An orange light means the pod cannot reach the other pods.",
             "Please move it closer, as pods work best no more than two rooms apart.",
             "The light turns white once it reconnects."],
            ["orange light", "two rooms"])


@intent("halo_pairing", "hardware", "product-halo-mesh",
        _halo,
        ["Adding a Halo pod", "How to pair a new pod", "Extra pod set-up", "New Halo pod won't join"],
        ["I bought an extra Halo pod for {room}. How do I add it to the others?",
         "How do I pair a new pod with my {product}?",
         "new pod arrived, how do i set it up",
         "Can you walk me through adding a pod? It's going in {room}.",
         "The pod I bought is flashing and not joining the mesh. What's the pairing process?",
         "What are the steps to connect another Halo pod?"])
def _(s: dict) -> Reply:
    return (["Plug the new pod in, then hold the button on its base for 5 seconds.",
             "Then open the Larkspur app and follow the steps under Halo > Add pod."],
            ["5 seconds", "Halo > Add pod"])


def _bought(r: random.Random) -> dict:
    device = r.choice(list(DEVICES))
    return {"product": device, "device": device, "price": DEVICES[device],
            "days": r.choice(["four", "six", "9", "10", "a week", "12"]),
            "reason": r.choice(["it's not what I expected", "we don't really need it", "I found I prefer my old one",
                                "it was a gift we can't use", "I bought the wrong model"])}


@intent("return_change_of_mind", "hardware", "returns-and-refunds",
        _bought,
        ["Return and refund", "I'd like to return my {device}", "Change of mind", "Sending back the {device}"],
        ["My {device} arrived {days} days ago and {reason}. Can I send it back for a refund?",
         "Hi, I want to return the {device} I bought. {reason}. It's in perfect condition.",
         "can i return the {device}? got it {days} days ago. {reason}",
         "I'd like my money back for the {device}, €{price}. Delivered {days} days ago, unused.",
         "Is it possible to return a {device} if {reason}? Delivered {days} days ago.",
         "Please arrange a return for my {device}. {reason}."])
def _(s: dict) -> Reply:
    return ([f"You can return your {s['device']} for a full refund within 14 days of delivery, for any reason.",
             f"Please start the return at {RETURNS_URL} to get a prepaid label.",
             "The refund reaches your original payment method within 5 working days."],
            ["14 days", RETURNS_URL, "5 working days"])


@intent("return_late_fault", "hardware", "returns-and-refunds",
        lambda r: {**_bought(r), "months": r.choice(["two months", "five months", "about 7 weeks", "three months"]),
                   "fault": r.choice(["keeps restarting", "won't charge", "has a dead speaker", "freezes every day",
                                      "stopped working"])},
        ["Faulty {device}", "Refund for faulty {device}", "{device} broken after {months}", "Warranty claim"],
        ["I bought the {device} {months} ago and it {fault}. I want a refund.",
         "My {device} {fault}. Bought it {months} ago. What are my options?",
         "{device} {fault}. had it {months}. money back please",
         "Our {device} {fault} since last week; we've had it {months}. Can I return it?",
         "Is the {device} still covered? It {fault} and it's {months} old.",
         "The {device} I got {months} ago {fault}. Please replace it or refund me."])
def _(s: dict) -> Reply:
    return ([f"As your {s['device']} was delivered more than 14 days ago, it cannot be refunded.",
             "It is covered by our 12-month warranty, so we will repair or replace it free of charge.",
             f"Please start a warranty claim at {RETURNS_URL}."],
            ["14 days", "12-month warranty", RETURNS_URL])


def _ember(r: random.Random) -> dict:
    return {"product": r.choice(["Ember", "Ember 4K"]),
            "tv": r.choice(["living room TV", "bedroom TV", "projector", "new TV"])}


@intent("ember_remote", "hardware", "product-ember-tv",
        _ember,
        ["Remote not working", "Ember remote won't pair", "Remote unresponsive", "Voice remote problem"],
        ["The Ember remote has stopped doing anything. The box still works with the app on my phone.",
         "My {product} remote won't pair any more. Is there a trick?",
         "remote doesnt work with the ember box",
         "After I moved the Ember to the {tv}, the remote no longer responds.",
         "How do I re-pair the voice remote with the {product}?",
         "Remote buttons do nothing on the Ember since yesterday. Batteries are only a month old."])
def _(s: dict) -> Reply:
    return (["Please hold Home + Back together for 5 seconds to re-pair the remote.",
             "If it still does not respond, fit new batteries and try again."],
            ["Home + Back", "5 seconds"])


@intent("ember_flame_logo", "hardware", "product-ember-tv contact-us",
        _ember,
        ["Ember stuck on logo", "Ember frozen at start-up", "Box won't start", "Stuck on flame screen"],
        ["The Ember box is stuck on the flame logo and won't go any further.",
         "My {product} froze on the start-up screen with the orange flame. What now?",
         "ember stuck on the logo thing for an hour",
         "When I switch on the {tv}, the Ember just shows the flame and never loads the home screen.",
         "Box hangs on the Larkspur flame. Tried the remote, nothing.",
         "The Ember has been on the logo screen since a software update last night."])
def _(s: dict) -> Reply:
    return (["Please unplug the Ember from the power for 30 seconds, then plug it back in.",
             "This clears a box that is stuck on the flame logo.",
             f"If it is still stuck after that, call us on {PHONE}."],
            ["30 seconds", "flame logo", PHONE])


@intent("ember_lost_remote", "hardware", "product-ember-tv",
        _ember,
        ["Lost remote", "Replacement remote", "Dog ate the remote", "Need a new Ember remote"],
        ["We've lost the Ember remote. Is it covered by the warranty?",
         "The dog chewed the {product} remote. How do I get a new one?",
         "lost the remote for the ember, can you send a new one free",
         "How much is a replacement voice remote? Ours has vanished.",
         "Can I buy a spare remote for the {product}?",
         "The remote went out with the rubbish by accident. Can I get another under warranty?"])
def _(s: dict) -> Reply:
    return (["Sorry, lost remotes are not covered by the warranty.",
             "A replacement voice remote costs €15, and you can order one in the Larkspur app."],
            ["not covered", "€15"])


@intent("ember_app_charge", "billing", "product-ember-tv",
        lambda r: {"product": r.choice(["Ember", "Ember 4K"]),
                   "app": r.choice(["a film app", "a sports streaming app", "a kids' cartoon app", "a music app"]),
                   "amount": r.choice(["€8.99", "€12.99", "€5.99", "€14.99"])},
        ["Subscription charge on Ember", "Cancel app subscription", "Charged {amount} for an app",
         "Who bills the apps?"],
        ["I'm being charged {amount} a month for {app} on the Ember. How do I cancel it with you?",
         "There's a {amount} subscription for {app} I didn't know about. Can Larkspur refund it?",
         "how do i stop paying for {app} on the ember box",
         "Do I cancel {app} subscriptions through Larkspur? It's {amount} a month.",
         "My card shows {amount} for {app} that my kids signed up to on the Ember. Please stop it.",
         "Is the {amount} for {app} part of my Larkspur bill?"])
def _(s: dict) -> Reply:
    return (["Subscriptions to apps on your Ember are billed by the app provider, not by Larkspur.",
             "Please contact the provider of that app to cancel it or to query the charge."],
            ["app provider"])


@intent("orbit_cracked", "hardware", "product-orbit-handsets",
        lambda r: {"product": r.choice(["Orbit S", "Orbit Max", "Orbit Go"]),
                   "how": r.choice(["dropped it on the stairs", "it fell out of my pocket", "my toddler threw it",
                                    "it went in the sink", "it slipped off the car roof"])},
        ["Cracked screen", "Broken phone screen", "Water damaged phone", "Screen repair under warranty?"],
        ["I {how} and now the {product} screen is cracked. Is that covered?",
         "My {product} got wet, {how}. Will you replace it under warranty?",
         "screen smashed, {how}. orbit still under warranty so fix free?",
         "Can you repair a cracked {product}? {how}.",
         "The screen on my {product} is shattered because {how}. What does a repair cost?",
         "{how}, and the display on the {product} is cracked right across."])
def _(s: dict) -> Reply:
    return (["Sorry to hear about your phone.",
             "Cracked screens and water damage are accidental damage, which the warranty does not cover.",
             f"We can quote a paid repair if you request one at {RETURNS_URL}."],
            ["accidental damage", "paid repair"])


@intent("device_overheating", "hardware", "product-orbit-handsets product-halo-mesh contact-us",
        lambda r: {"product": r.choice(["Orbit S", "Orbit Max", "Halo pod", "Orbit Go"]),
                   "sign": r.choice(["smells of burning", "is swelling at the back", "is too hot to touch",
                                     "gave off a bit of smoke"])},
        ["Device overheating", "Burning smell", "Safety problem with {product}", "Swollen battery?"],
        ["My {product} {sign}. What should I do?",
         "Worried about our {product}: it {sign}. Is it safe?",
         "{product} {sign} since this morning",
         "Our {product} {sign} while charging. I've put it on the tiled floor.",
         "Is it normal that the {product} {sign}? It's only a few months old.",
         "URGENT - the {product} {sign}."])
def _(s: dict) -> Reply:
    verb = "unplug" if s["product"].startswith("Halo") else "switch off"
    return ([f"Please {verb} the {s['product']} now and do not use it again.",
             f"Call us on {PHONE} so we can arrange a safe replacement.",
             "Do not put it in a recycling bag; a Larkspur shop can pack it safely."],
            [PHONE, "recycling bag"])


@intent("delivery_missing", "hardware", "orders-and-deliveries",
        lambda r: {**_bought(r), "wait": r.choice(["6 working days", "over a week", "8 days", "nearly two weeks"])},
        ["Order not arrived", "Where is my {device}?", "Delivery missing", "Still waiting for my order"],
        ["I ordered a {device} {wait} ago and it hasn't turned up. The tracking hasn't moved.",
         "My {device} order is {wait} late. Can you find out where it is?",
         "still no {device}, ordered {wait} ago",
         "Tracking says dispatched but my {device} never came. That was {wait} ago.",
         "It's been {wait} since I ordered the {device}. I need it for a birthday.",
         "Has my {device} been lost? Ordered {wait} ago."])
def _(s: dict) -> Reply:
    return (["Sorry your order has not arrived.",
             "Orders normally arrive within 3 working days, so we will trace the parcel.",
             "If it cannot be found, we will send a replacement."],
            ["3 working days", "trace"])


# -- installations -----------------------------------------------------------------------------------------
@intent("new_connection", "installations", "installations-and-moves",
        lambda r: {"product": r.choice([*STRAND, "Skylark"]), "place": r.choice(PLACES)},
        ["How long for a new connection?", "New installation lead time", "Ordering {product}",
         "When will my line be live?"],
        ["If I order {product} today, how long until it's working? We're in {place}.",
         "How soon can a technician connect {product} at our new house in {place}?",
         "whats the wait for {product} to be installed",
         "Thinking of ordering {product}. What's the lead time and do I need to be home all day?",
         "We just ordered {product}. When should we expect the install?",
         "How many days does a new {product} connection take?"])
def _(s: dict) -> Reply:
    days = "5 working days" if s["product"] == "Skylark" else "10 working days"
    return ([f"{s['product']} is normally live {days} after you order.",
             "You can choose a morning slot (8-13) or an afternoon slot (13-18) for the technician visit."],
            [days, "8-13", "13-18"])


@intent("moving_home", "installations", "installations-and-moves",
        lambda r: {"product": home_plan(r), "place": r.choice(PLACES),
                   "when": r.choice(["next month", "in six weeks", "at the end of March", "in about two months"])},
        ["Moving house", "Taking broadband to a new address", "Home move", "Moving to {place}"],
        ["We're moving to {place} {when}. Can we take our {product} with us?",
         "What do I need to do about my broadband when I move {when}?",
         "moving {when}, how do i move my internet",
         "I'm relocating to {place} {when}. If you can't serve the new address, do I pay to leave?",
         "How much notice do you need for a home move? We go {when}.",
         "Planning a move {when}. How does moving the {product} plan work?"])
def _(s: dict) -> Reply:
    return ([f"Please tell us about your move at {MOVE_URL} at least 30 days before the moving date.",
             "Your plan moves with you if we can serve the new address.",
             "If we cannot, we waive the early termination fee."],
            [MOVE_URL, "30 days", "early termination fee"])


@intent("tech_no_show", "installations", "installations-and-moves",
        lambda r: {"product": r.choice([*STRAND, "Skylark"]), "slot": r.choice(["morning", "afternoon"]),
                   "day": r.choice(WEEKDAYS)},
        ["Technician didn't turn up", "Missed appointment", "No-show on {day}", "Waited in all {slot} for nothing"],
        ["I took the {slot} off work on {day} and your technician never came. Nobody called.",
         "The engineer didn't show up for our {slot} slot on {day}. What now?",
         "waited all {slot} on {day}, no technician, no call. not happy",
         "Booked {slot} appointment for {product} on {day}: no one arrived. Is there compensation?",
         "Your technician missed the {slot} appointment on {day} without any warning.",
         "Second time lucky? The first visit on {day} ({slot}) never happened."])
def _(s: dict) -> Reply:
    return (["We are sorry our technician did not arrive.",
             "As the visit was missed without 24 hours' notice, a €30 credit is added to your account automatically.",
             "You can book a new slot in the Larkspur app."],
            ["€30", "24 hours"])


@intent("missed_appointment_fee", "billing", "installations-and-moves",
        lambda r: {"product": r.choice([*STRAND, "Skylark"]), "day": r.choice(WEEKDAYS),
                   "why": r.choice(["I was stuck in traffic", "my daughter was ill", "I got the date wrong",
                                    "I was only out for ten minutes"])},
        ["€40 missed appointment fee", "Charged for missed visit", "Appointment fee refund", "Unfair €40 charge"],
        ["You charged me €40 because I wasn't home on {day}. {why}. Please refund it.",
         "I see a missed-appointment fee on my bill. {why}. Can it be removed?",
         "40 euro fee for missing the technician?? {why}",
         "Is the €40 fee refundable? {why} on {day}.",
         "Please waive the missed-appointment charge from {day}; {why}.",
         "I was charged for missing the install on {day}. {why}. That seems harsh."])
def _(s: dict) -> Reply:
    return (["The €40 missed-appointment fee applies when nobody is home for a booked visit, and it is not refundable.",
             "To avoid it next time, you can move a visit in the Larkspur app up to 24 hours before the slot."],
            ["€40", "not refundable", "24 hours"])


@intent("hanging_cable", "installations", "installations-and-moves",
        lambda r: {"product": r.choice([*STRAND, "Harbor 300"]),
                   "where": r.choice(["across the footpath", "over the driveway", "from the pole onto the road",
                                      "at head height by the gate", "across the garden"])},
        ["Cable hanging down", "Dangerous cable", "Loose cable after installation", "Cable {where}"],
        ["Since your install there's a cable hanging {where}. Someone could trip or worse.",
         "There is a Larkspur cable lying {where}. It's been there since yesterday's visit.",
         "cable hanging {where} after your guy left. kids walk past it",
         "Please send someone: a cable is dangling {where} after the technician's visit.",
         "Your fibre cable has come down {where}. I've put a cone next to it.",
         "Loose cable {where} left by your installer. Is it safe?"])
def _(s: dict) -> Reply:
    return (["Thank you for telling us.",
             "Please keep everyone clear of the cable and do not touch it.",
             f"Call us on {PHONE} and a technician will make it safe the same day."],
            [PHONE, "same day"])


@intent("reschedule_visit", "installations", "installations-and-moves",
        lambda r: {"product": r.choice([*STRAND, "Skylark"]), "day": r.choice(WEEKDAYS)},
        ["Change my appointment", "Reschedule technician", "Move my install date", "Can't make {day}"],
        ["I can't be home for the technician on {day} any more. How do I change the slot?",
         "Can I move my installation appointment from {day} to later in the week?",
         "need to reschedule the engineer visit on {day}",
         "Something came up on {day}. Is it possible to move the {product} install?",
         "How late can I change a technician appointment? Mine is on {day}.",
         "Please rebook my {day} visit, work has called me in."])
def _(s: dict) -> Reply:
    return (["You can move your appointment in the Larkspur app up to 24 hours before the slot.",
             "There are morning (8-13) and afternoon (13-18) slots.",
             f"Later than that, please call us on {PHONE}."],
            ["24 hours", "8-13", PHONE])


@intent("install_mess", "installations", "installations-and-moves",
        lambda r: {"product": r.choice([*STRAND, "Skylark"]),
                   "mess": r.choice(["a hole in the wrong wall", "plaster dust all over the carpet",
                                     "a cable clipped across the window", "a cracked skirting board",
                                     "drill holes in the tiles"])},
        ["Mess after installation", "Damage from install", "Technician left a mess", "Complaint about installer"],
        ["Your installer left {mess}. I'm not impressed.",
         "After the {product} install yesterday there's {mess}. Who fixes this?",
         "technician left {mess}, sort it out",
         "I'd like someone to come back: the install left {mess}.",
         "The engineer was friendly but left {mess}. Can it be put right?",
         "Complaint: {mess} after your visit."])
def _(s: dict) -> Reply:
    return (["We are sorry about the state the installation was left in.",
             "Damage or mess from an installation is put right free of charge on a return visit.",
             "You can choose a slot for it in the Larkspur app."],
            ["free of charge", "return visit"])


# -- mobile ------------------------------------------------------------------------------------------------
def _mobile(r: random.Random) -> dict:
    return {"product": r.choice(["Tether", "Tether", "Kite"]),
            "phone": r.choice(["Orbit S", "Orbit Max", "my own phone", "an older phone"])}


@intent("esim_activation", "mobile", "mobile-tether-kite contact-us",
        _mobile,
        ["eSIM not active", "eSIM activation", "eSIM still pending", "New eSIM not working"],
        ["I set up the eSIM about an hour ago and it still says activating. How long does it take?",
         "My eSIM on {phone} isn't working yet. Did I do something wrong?",
         "esim still not active, set it up this morning",
         "How long should eSIM activation take? Still no service on {phone}.",
         "Switched to {product} with an eSIM today. The phone says 'No service'. Normal?",
         "Waiting on eSIM activation. Anything I can do to speed it up?"])
def _(s: dict) -> Reply:
    return (["eSIM activation normally finishes within 2 hours.",
             "Restarting the phone while it is on Wi-Fi helps it finish.",
             f"If it is still not active after 2 hours, call us on {PHONE}."],
            ["2 hours", PHONE])


@intent("porting_in", "mobile", "mobile-tether-kite",
        lambda r: {**_mobile(r), "old": r.choice(["my old network", "my previous provider", "my work phone provider"])},
        ["Keeping my number", "Porting my number", "Bring my number to Larkspur", "Number transfer"],
        ["I want to keep my number from {old} when I join {product}. How long does it take?",
         "How do I move my number over from {old}?",
         "can i keep my number? coming from {old}",
         "Joining Larkspur next week. What do I need to transfer my existing number?",
         "My number transfer from {old} hasn't happened yet. How long is it meant to take?",
         "Is there any downtime when porting a number from {old}?"])
def _(s: dict) -> Reply:
    return (["Bringing your number from another network takes one working day once we have the porting code.",
             "You can ask your old network for the porting code.",
             "Your old SIM stops working when the move completes."],
            ["one working day", "porting code"])


@intent("voicemail", "mobile", "mobile-tether-kite",
        _mobile,
        ["Voicemail", "How do I check voicemail?", "Voicemail number", "Set up voicemail"],
        ["What number do I dial to get my voicemail?",
         "How do I listen to my messages on {product}?",
         "voicemail number?",
         "I have a voicemail notification on my {phone}. How do I hear it?",
         "Can you remind me how to set up voicemail on my Larkspur SIM?",
         "Where do I change my voicemail greeting?"])
def _(s: dict) -> Reply:
    return (["You can reach your voicemail by dialling 121 from your Larkspur phone.",
             "Follow the prompts there to hear messages and set your greeting."],
            ["121"])


@intent("wander_howto", "mobile", "roaming-wander-pass",
        lambda r: {**_mobile(r), "country": r.choice(ZONE1 + ZONE2),
                   "when": r.choice(["next week", "in August", "for two weeks", "tomorrow", "for a wedding"])},
        ["Roaming in {country}", "Using my phone abroad", "Wander pass", "Travelling to {country}"],
        ["I'm going to {country} {when}. How much will it cost to use my phone there?",
         "Do I need to do anything before travelling to {country} {when}? I'm on {product}.",
         "going to {country} {when}, how do i turn on roaming",
         "What does the Wander pass cost in {country}? Off {when}.",
         "Will my data work in {country}? Heading there {when}.",
         "How do I switch on roaming for my trip to {country} {when}?"])
def _(s: dict) -> Reply:
    zone, price = ("1", "€4") if s["country"] in ZONE1 else ("2", "€9")
    where = s["country"][0].upper() + s["country"][1:]
    return ([f"{where} is in Wander Zone {zone}, so the pass costs {price} per day, charged only on days you use your phone there.",
             "Switch it on in the Larkspur app or text WANDER ON to 5050 before you travel."],
            [price, "WANDER ON", "5050"])


@intent("roaming_outside", "mobile", "roaming-wander-pass",
        lambda r: {**_mobile(r), "country": r.choice(NO_ZONE + ["a cruise", "a cruise ship"]),
                   "when": r.choice(["next month", "in the spring", "over Christmas", "for three weeks"])},
        ["Roaming in {country}", "Phone abroad - {country}", "Wander for {country}?", "Data abroad"],
        ["Does Wander work in {country}? Going {when}.",
         "How much will data cost on {country} {when}? I'm on {product}.",
         "can i use wander in {country}",
         "Planning {country} {when}. Is there a daily pass?",
         "What are the roaming rates for {country}? Travelling {when}.",
         "Will my allowance work in {country}?"])
def _(s: dict) -> Reply:
    where = "on cruise ships" if "cruise" in s["country"] else f"in {s['country']}"
    return ([f"There is no Wander pass {where}, so usage there is charged per MB and per minute at the rates on the roaming price list.",
             "To avoid charges, you can switch off mobile data and use Wi-Fi."],
            ["per MB", "roaming price list"])


@intent("roaming_dispute_outside", "billing", "roaming-wander-pass",
        lambda r: {**_mobile(r), "country": r.choice(NO_ZONE + ["a cruise ship"]),
                   "amount": r.choice(["€86", "€140", "€212", "€57", "€310"])},
        ["Huge roaming bill", "Roaming charges - {amount}", "Refund roaming charges", "Charged {amount} abroad"],
        ["I've been charged {amount} for data in {country}. That's outrageous. I want it refunded.",
         "My bill has {amount} of roaming from {country}. I had Wander on, so why?",
         "{amount} for a few days in {country}?? refund it",
         "Can the {amount} roaming charge from {country} be reduced or refunded?",
         "Nobody told me {country} wasn't covered. {amount} is a lot. Please refund.",
         "I'd like to dispute {amount} of data charges from {country}."])
def _(s: dict) -> Reply:
    return (["Sorry about the size of this bill.",
             "Wander covers only Zone 1 and Zone 2, so usage elsewhere is charged per MB and those charges are not refundable.",
             "Next time, switching off mobile data abroad avoids them."],
            ["per MB", "not refundable"])


@intent("roaming_dispute_inside", "billing", "roaming-wander-pass returns-and-refunds",
        lambda r: {**_mobile(r), "country": r.choice(ZONE1 + ZONE2),
                   "amount": r.choice(["€43", "€67", "€95", "€28", "€120"])},
        ["Charged per MB despite Wander", "Wrong roaming charges", "Wander was on but charged {amount}",
         "Roaming error {country}"],
        ["I had Wander switched on in {country} but I was still charged {amount} per MB. Please explain.",
         "Bill shows {amount} data charges in {country}, but I paid for Wander every day.",
         "wander was ON in {country} and you still charged me {amount}",
         "Why was I charged per MB in {country} when my Wander pass was active?",
         "There's {amount} of data use in {country} on my bill despite Wander. Refund please.",
         "My Wander pass was running in {country} and I still got {amount} of data charges."])
def _(s: dict) -> Reply:
    return (["Sorry about this.",
             f"With Wander switched on, you should not be charged per MB in {s['country']}, so this is a billing error.",
             "We will refund the charges to your original payment method within 5 working days."],
            ["billing error", "5 working days"])


@intent("kite_topup_wrong", "billing", "mobile-tether-kite",
        lambda r: {"product": "Kite", "amount": r.choice(["€10", "€20", "€30"])},
        ["Top-up to wrong number", "Refund top-up", "Wrong number topped up", "Mistake with top-up"],
        ["I topped up {amount} to the wrong number by mistake. Can I have it back?",
         "My {amount} top-up went to a stranger's phone because I typed one digit wrong.",
         "sent {amount} topup to wrong number, refund pls",
         "Is there any way to reverse a {amount} Kite top-up sent to the wrong person?",
         "Can a {amount} top-up be moved to my number? It went to my old one.",
         "I bought {amount} credit and it hasn't been used. Can I get the money back?"])
def _(s: dict) -> Reply:
    return (["Sorry, Kite top-ups are not refundable once they have been applied, even if sent to the wrong number.",
             "Please check the number carefully before your next top-up."],
            ["not refundable"])


@intent("kite_topup_twice", "billing", "mobile-tether-kite returns-and-refunds",
        lambda r: {"product": "Kite", "amount": r.choice(["€10", "€20", "€30"])},
        ["Charged twice for top-up", "Double top-up payment", "Duplicate charge {amount}", "Top-up taken twice"],
        ["I topped up {amount} once but my card was charged twice.",
         "My bank shows two {amount} payments to Larkspur for one top-up.",
         "charged twice for a {amount} top up",
         "One {amount} Kite top-up, two payments. Please fix.",
         "The app crashed during my {amount} top-up and now I've paid twice.",
         "There are two identical {amount} top-up charges on my card today."])
def _(s: dict) -> Reply:
    return (["Sorry, a top-up taken twice is a duplicate charge, and we will refund the second payment.",
             "It reaches your card within 5 working days."],
            ["duplicate charge", "5 working days"])


@intent("mobile_outage_credit", "mobile", "mobile-tether-kite outage-credits",
        lambda r: {"product": r.choice(["Tether", "Tether", "Kite"]), "days": r.choice(["two days", "three days",
                                                                                       "since Saturday", "30 hours"])},
        ["No mobile service - credit?", "Compensation for mobile outage", "No signal for {days}", "Phone dead network"],
        ["No mobile service at all for {days}. No calls, no data. Do I get anything back?",
         "My phone had zero signal {days} because of your mast fault. I'm on {product}. Compensation?",
         "no service {days}, want money back",
         "Is there a credit for the mobile outage? We had nothing {days}.",
         "{days} with no calls or texts. What are you going to do about it?",
         "The mast near us was down {days}. Will {product} customers get a credit?"])
def _(s: dict) -> Reply:
    if s["product"] == "Kite":
        return (["We are sorry for the time without service.",
                 "Kite prepaid plans do not earn outage credits, so no credit is due.",
                 f"If the service is not back, please call us on {PHONE}."],
                ["do not earn outage credits"])
    return (["We are sorry for the time without service.",
             "When Tether service is completely off for 24 hours, you get a credit of one day's fee for each started day.",
             "It is added to your next bill automatically."],
            ["24 hours", "one day's fee"])


@intent("weak_signal", "mobile", "mobile-tether-kite",
        lambda r: {**_mobile(r), "room": r.choice(["indoors", "upstairs", "in the kitchen", "at the back of the house"])},
        ["Weak signal at home", "No bars indoors", "Poor signal", "Calls drop at home"],
        ["I only get one bar {room} and calls drop. Outside it's fine.",
         "Signal on {product} is terrible {room}. Anything I can do?",
         "rubbish signal {room}",
         "Since moving house, my {phone} barely gets signal {room}.",
         "Is there a way to make calls when the signal {room} is so poor?",
         "My calls keep cutting out {room}. Is there a coverage problem?"])
def _(s: dict) -> Reply:
    return ([f"You can check coverage at your address at {COVERAGE_URL}.",
             "If the signal is weak indoors, switch on Wi-Fi Calling in your phone's settings, so calls use your broadband."],
            [COVERAGE_URL, "Wi-Fi Calling"])


# -- accounts ----------------------------------------------------------------------------------------------
@intent("sim_swap", "accounts", "security-and-fraud",
        lambda r: {**_mobile(r), "since": r.choice(["an hour ago", "this morning", "20 minutes ago", "since lunch"])},
        ["Phone says No SIM", "SOS only", "Lost service suddenly", "Did someone take my number?"],
        ["My phone suddenly says 'No SIM' since {since}. I didn't order a new SIM. What's going on?",
         "Phone has shown SOS only {since}. My bank app also logged me out. I'm worried.",
         "no sim on my phone {since}, didnt change anything",
         "I've had no service {since} and the phone says No SIM. Could someone have my number?",
         "Something is wrong: my {phone} says No SIM {since} and I got an email about a SIM change.",
         "Urgent: my number stopped working {since}. No SIM shows on screen."])
def _(s: dict) -> Reply:
    return ([f"Please call our fraud line on {FRAUD_PHONE} now; it is open 24 hours a day.",
             "A phone that suddenly shows No SIM can mean someone has moved your number to another SIM, and we can block it straight away."],
            [FRAUD_PHONE, "24 hours"])


@intent("lost_phone", "accounts", "security-and-fraud mobile-tether-kite",
        lambda r: {**_mobile(r), "where": r.choice(["on the bus", "at a concert", "in a taxi", "at the beach",
                                                   "on the train"])},
        ["Lost phone", "Phone stolen", "Block my SIM", "Stolen {phone}"],
        ["I lost my phone {where} last night. Please block it.",
         "My {phone} was stolen {where}. What do I do?",
         "phone nicked {where}. block sim",
         "I think I left my phone {where}. Can you stop anyone using my SIM?",
         "Someone took my bag {where} with my phone in it. I'm on {product}.",
         "Lost my {phone} {where}. How do I get a new SIM with the same number?"])
def _(s: dict) -> Reply:
    return ([f"Please call {FRAUD_PHONE}, open 24 hours a day, so we can block your SIM and handset straight away.",
             "We will then send you a new SIM with the same number, free of charge."],
            [FRAUD_PHONE, "new SIM"])


@intent("phishing_received", "accounts", "security-and-fraud",
        lambda r: {"product": r.choice(["Tether", "Strand 500", "Kite", "Account"]),
                   "msg": r.choice(["a text saying my bill payment failed", "an email about a refund of €48",
                                    "a text asking me to confirm my card", "an email saying my account is locked"])},
        ["Is this text from you?", "Suspicious email", "Phishing?", "Scam message"],
        ["I got {msg} with a link. Is it really from Larkspur? I haven't clicked it.",
         "Just received {msg}. Looks dodgy. I didn't reply.",
         "got {msg}. scam?",
         "Please check: {msg} arrived today. I have not opened the link.",
         "Is {msg} genuine? It asks for my details.",
         "Reporting {msg}. I ignored it."])
def _(s: dict) -> Reply:
    return (["Thank you for reporting this.",
             "Larkspur never asks for card details or one-time codes by text, email or phone.",
             f"Please forward the message to {PHISHING_EMAIL} and then delete it."],
            ["one-time codes", PHISHING_EMAIL])


@intent("phishing_acted", "accounts", "security-and-fraud",
        lambda r: {"product": r.choice(["Tether", "Strand 900", "Kite", "Account"]),
                   "gave": r.choice(["my card number", "the code you texted", "my password", "my bank details"])},
        ["I think I've been scammed", "Gave my details to a scammer", "Clicked a fake link", "Help - phishing"],
        ["I clicked a link in a 'Larkspur' text and entered {gave}. I now think it was fake.",
         "Someone rang saying they were Larkspur and I gave them {gave}.",
         "gave {gave} on a fake larkspur page. what now",
         "I'm afraid I typed {gave} into a website that looked like yours.",
         "A caller asked for {gave} to 'verify' me and I gave it. Was that you?",
         "Help, I responded to an email and gave {gave}."])
def _(s: dict) -> Reply:
    return ([f"Please call our fraud line on {FRAUD_PHONE} now, so we can secure your account.",
             f"Please also choose a new password at {RESET_URL}, and contact your bank if you gave card details."],
            [FRAUD_PHONE, RESET_URL])


@intent("password_reset", "accounts", "account-and-login",
        lambda r: {"product": "Account", "app": r.choice(["the app", "the website", "My Larkspur"])},
        ["Can't log in", "Forgot password", "Locked out of my account", "Password reset"],
        ["I've forgotten my password for {app}. How do I get back in?",
         "Can't log in to {app}. It says my password is wrong.",
         "forgot password",
         "How do I reset my Larkspur password? The reset code goes to my old number.",
         "Locked out of {app} after too many tries. Help.",
         "I need to reset my login for {app}."])
def _(s: dict) -> Reply:
    return ([f"You can reset your password at {RESET_URL}.",
             "We send a code by text to the mobile number on your account.",
             f"If that number has changed, call us on {PHONE} and we will verify you another way."],
            [RESET_URL, PHONE])


@intent("account_takeover", "accounts", "security-and-fraud",
        lambda r: {"product": r.choice(["Account", "Tether", "Strand 500"]),
                   "sign": r.choice(["an order for an Orbit Max I never made", "a login from another country",
                                     "my email address was changed", "top-ups I didn't buy"])},
        ["Someone is in my account", "Unrecognised activity", "Account hacked", "Order I didn't make"],
        ["There's {sign} on my account. I didn't do this.",
         "I think my account has been hacked: {sign}.",
         "{sign}?? not me",
         "Please help, I noticed {sign} this morning.",
         "Can you check my account? I see {sign}.",
         "Security problem: {sign}."])
def _(s: dict) -> Reply:
    return ([f"Please call our fraud line on {FRAUD_PHONE} now so we can lock your account.",
             f"Please also choose a new password at {RESET_URL}.",
             "Charges made by someone who took over your account are refunded."],
            [FRAUD_PHONE, RESET_URL, "refunded"])


def _sentinel(r: random.Random) -> dict:
    return {"product": "Sentinel", "plan": r.choice([*STRAND, "Skylark"]),
            "site": r.choice(["my bank's website", "the school portal", "a recipe site", "my work webmail",
                              "a local news site"]),
            "weeks": r.choice(["two weeks", "10 days", "three weeks"]), "months": r.choice(["three months", "a year",
                                                                                              "six months"])}


@intent("sentinel_cancel_early", "accounts", "addon-sentinel",
        _sentinel,
        ["Cancel Sentinel", "Remove security add-on", "Don't want Sentinel", "Sentinel refund"],
        ["I added Sentinel {weeks} ago but don't need it. Can I cancel and get my money back?",
         "Please cancel Sentinel; I switched it on {weeks} ago by mistake.",
         "cancel sentinel, only had it {weeks}",
         "Sentinel isn't for us. We've had it {weeks}. Refund?",
         "How do I turn off Sentinel? Started it {weeks} ago.",
         "I want to stop the €4 Sentinel add-on I took {weeks} ago."])
def _(s: dict) -> Reply:
    return (["Sentinel can be cancelled within 30 days of switching it on for a full refund of what you paid.",
             "You can switch it off in the Larkspur app under Sentinel."],
            ["30 days", "full refund"])


@intent("sentinel_cancel_late", "accounts", "addon-sentinel",
        _sentinel,
        ["Cancel Sentinel and refund", "Sentinel charges", "Stop Sentinel", "Refund the add-on"],
        ["I've paid for Sentinel for {months} and never used it. Cancel it and refund me please.",
         "Please stop Sentinel. Been on it {months}. Can I get the fees back?",
         "sentinel for {months}, never used, want refund",
         "I forgot Sentinel was on my bill for {months}. Can those months be refunded?",
         "Cancel the security add-on please, we've had it {months}.",
         "How much of the Sentinel fee can I get back after {months}?"])
def _(s: dict) -> Reply:
    return (["You can cancel Sentinel at any time in the Larkspur app.",
             "As it has been on for more than 30 days, months already charged are not refunded."],
            ["30 days", "not refunded"])


@intent("sentinel_blocked_site", "accounts", "addon-sentinel",
        _sentinel,
        ["Site blocked by Sentinel", "Sentinel blocking a safe site", "Can't open {site}", "Website blocked"],
        ["Sentinel is blocking {site}. It's perfectly safe.",
         "Since we got Sentinel I can't open {site}.",
         "sentinel blocks {site}, how do i unblock",
         "How do I allow {site}? Sentinel says it's dangerous.",
         "Our kids can't reach {site} for homework because of Sentinel.",
         "Please unblock {site} on my Sentinel."])
def _(s: dict) -> Reply:
    return (["Sentinel sometimes blocks a safe site by mistake.",
             "You can allow it in the Larkspur app under Sentinel > Allowed sites."],
            ["Sentinel > Allowed sites"])


@intent("sentinel_breach_alert", "accounts", "addon-sentinel security-and-fraud",
        _sentinel,
        ["Breach alert", "Sentinel says my email leaked", "Data leak warning", "What does this alert mean?"],
        ["Sentinel sent me a breach alert about my email. Was Larkspur hacked?",
         "Got a data leak warning from Sentinel. What should I do?",
         "breach alert from sentinel, should i worry",
         "What is a Sentinel breach alert? I got one for my work email.",
         "My Sentinel says my address was found in a leak. Is my Larkspur account at risk?",
         "Just had a breach notification. What does it mean exactly?"])
def _(s: dict) -> Reply:
    return (["A breach alert means your email address appeared in a data leak from another company, not from Larkspur.",
             "Please change the password for that service and anywhere you reused it.",
             f"If anyone has got into your Larkspur account, call {FRAUD_PHONE}."],
            ["data leak", FRAUD_PHONE])


@intent("parental_controls", "accounts", "addon-sentinel",
        _sentinel,
        ["Parental controls", "Bedtime for the kids' Wi-Fi", "Limit kids' internet", "Schedules"],
        ["How do I turn off the internet on the kids' tablets at 9pm?",
         "Can Sentinel block certain sites for my children?",
         "parental controls how",
         "Where are the bedtime settings in Sentinel?",
         "I want to set screen time limits for my son's console. Possible?",
         "How do I set up parental controls with Sentinel?"])
def _(s: dict) -> Reply:
    return (["Parental controls and bedtime schedules are set in the Larkspur app under Sentinel > Family.",
             "They apply to each device you choose, with no software to install."],
            ["Sentinel > Family"])


@intent("data_request", "accounts", "account-and-login contact-us",
        lambda r: {"product": "Account", "what": r.choice(["a copy of all the data you hold on me",
                                                           "my data deleted", "my call records for last year",
                                                           "to know what data you share"])},
        ["Data request", "Privacy request", "My personal data", "GDPR request"],
        ["I would like {what}. Where do I send the request?",
         "Please tell me how to get {what}.",
         "want {what}",
         "How do I make a formal request for {what}?",
         "Under data protection law I'm asking for {what}.",
         "Who handles requests for {what}?"])
def _(s: dict) -> Reply:
    return ([f"Please send your request to {PRIVACY_EMAIL}.",
             "We answer privacy and data requests within 30 days."],
            [PRIVACY_EMAIL, "30 days"])


# -- billing -----------------------------------------------------------------------------------------------
def _bill(r: random.Random) -> dict:
    plan = r.choice([*STRAND, "Skylark", "Tether"])
    return {"product": plan, "plan": plan, "month": r.choice(["March", "this month", "June", "October", "last month"])}


@intent("bill_dates", "billing", "billing-and-payments",
        _bill,
        ["When is the bill?", "Direct debit date", "Billing date question", "When do you take payment?"],
        ["When do you send the bill and when is the money taken?",
         "What day of the month does the direct debit come out?",
         "when is my bill due",
         "Can I change my billing date? When is it now?",
         "I get paid on the 10th. When do you collect the direct debit?",
         "Remind me when the bills come out please."])
def _(s: dict) -> Reply:
    return (["Bills are issued on the 1st of each month, and the direct debit is collected on the 8th.",
             "You can change your billing date in the Larkspur app under Billing."],
            ["1st", "8th"])


@intent("failed_payment", "billing", "billing-and-payments",
        _bill,
        ["Payment failed", "Direct debit bounced", "Missed payment", "Can't pay this month"],
        ["My direct debit failed {month} because I changed banks. What happens now?",
         "I got a message that my payment didn't go through. Will I be charged extra?",
         "payment failed, will you cut me off",
         "My card expired and the {month} payment failed. Is there a late fee?",
         "I can't pay the full bill until the 20th. What happens if it's late?",
         "Direct debit bounced {month}. How long before a fee is added?"])
def _(s: dict) -> Reply:
    return (["We retry a failed payment after 3 days and send a reminder.",
             "If a bill is still unpaid 21 days after the due date, a €10 late-payment fee is added.",
             "You can pay now by card in the Larkspur app."],
            ["3 days", "21 days", "€10"])


@intent("paper_bill", "billing", "billing-and-payments",
        _bill,
        ["Paper bill charge", "Why €1.50?", "Switch to online bills", "Paper bill"],
        ["What is the €1.50 on my bill every month?",
         "Can I get a paper bill? How much does it cost?",
         "stop the paper bill please",
         "Why am I paying extra for a paper bill?",
         "I'd like my bills by post for my records. Is there a charge?",
         "How do I switch from paper to online bills?"])
def _(s: dict) -> Reply:
    return (["Paper bills cost €1.50 per month, and online bills are free.",
             "You can switch between them in the Larkspur app under Billing."],
            ["€1.50"])


@intent("cancel_in_term", "billing", "billing-and-payments",
        lambda r: {**_bill(r), "left": r.choice(["8 months", "a year", "14 months", "5 months"])},
        ["Cancel my contract", "Leaving Larkspur", "Cancellation", "How much to leave early?"],
        ["I want to cancel. I still have {left} left on my contract. What will it cost?",
         "How do I end my {plan} contract early? About {left} to go.",
         "cancel my contract, {left} left",
         "If I leave now with {left} remaining, is there a fee?",
         "Please tell me the cancellation process and costs. {left} left on the term.",
         "I'd like to give notice on my {plan} plan. {left} remaining."])
def _(s: dict) -> Reply:
    return (["Cancelling needs 30 days' notice, which you can give in the Larkspur app.",
             "As you are within your minimum term, an early termination fee of 50% of the remaining monthly fees applies."],
            ["30 days", "50%"])


@intent("plan_change", "billing", "billing-and-payments plan-strand-fibre",
        lambda r: (lambda a, b: {"product": a, "plan": a, "new": b})(*r.sample(list(STRAND), 2)),
        ["Change my plan", "Switch to {new}", "Plan change", "Upgrade or downgrade"],
        ["I'd like to move from {plan} to {new}. When does it take effect?",
         "Can I switch to {new}? I'm on {plan}.",
         "change plan to {new} pls",
         "What happens to my bill if I go from {plan} to {new}?",
         "How soon can I be on {new} instead of {plan}?",
         "Thinking of changing {plan} to {new}. Any refund for this month?"])
def _(s: dict) -> Reply:
    new_price = STRAND[s["new"]][2]
    if STRAND[s["new"]][0] > STRAND[s["plan"]][0]:
        return ([f"An upgrade to {s['new']} starts immediately, at €{new_price} per month.",
                 "You can make the change in the Larkspur app."],
                ["immediately", f"€{new_price}"])
    return ([f"A move to {s['new']} starts on your next bill, at €{new_price} per month.",
             "There is no part refund for the rest of the current month."],
            ["next bill", f"€{new_price}"])


@intent("duplicate_charge", "billing", "billing-and-payments returns-and-refunds",
        _bill,
        ["Charged twice", "Double charge", "Two payments taken", "Duplicate direct debit"],
        ["You've taken my {month} payment twice.",
         "Two direct debits came out for {month}. Please return one.",
         "double charged for {month}",
         "My bank statement shows the {plan} bill paid twice {month}.",
         "I've been billed twice {month}. Can you refund the extra one?",
         "There are two identical charges from Larkspur {month}."])
def _(s: dict) -> Reply:
    return (["Sorry, you were charged twice.",
             "A duplicate charge is a billing error, so we will refund it.",
             "The money reaches your original payment method within 5 working days."],
            ["billing error", "5 working days"])


@intent("price_higher", "billing", "billing-and-payments plan-strand-fibre",
        lambda r: (lambda p: {"product": p, "plan": p, "charged": STRAND[p][2] + r.choice([5, 6, 10, 11])})(
            r.choice(list(STRAND))),
        ["Bill higher than my plan", "Overcharged", "Price went up?", "Wrong amount on bill"],
        ["My {plan} bill is €{charged} but I signed up at the normal price. Why?",
         "You charged me €{charged} this month for {plan}. That's not what my contract says.",
         "why is my bill €{charged}, i'm on {plan}",
         "I've been overcharged: €{charged} for {plan}.",
         "Can you explain the €{charged} on my {plan} bill?",
         "Price on my bill went up to €{charged}. I'm mid-contract on {plan}."])
def _(s: dict) -> Reply:
    price = STRAND[s["plan"]][2]
    return ([f"Your {s['plan']} plan costs €{price} per month, so a higher charge is a billing error.",
             "We will refund the difference within 5 working days."],
            [f"€{price}", "5 working days"])


@intent("charge_after_cancel", "billing", "billing-and-payments returns-and-refunds",
        _bill,
        ["Charged after cancelling", "Still being billed", "I left but you took money", "Payment after cancellation"],
        ["I cancelled and you confirmed it, but you took another payment {month}.",
         "Why am I still being charged for {plan}? I left weeks ago.",
         "cancelled months ago, still charging me",
         "You took money {month} even though my cancellation was confirmed.",
         "Please refund the {month} payment; my account was closed.",
         "A direct debit went out {month} after I had cancelled."])
def _(s: dict) -> Reply:
    return (["Sorry, you should not have been charged after your cancellation was confirmed.",
             "This is a billing error, and we will refund it within 5 working days."],
            ["billing error", "5 working days"])


# -- priority assist and other ------------------------------------------------------------------------------
@intent("priority_assist", "accounts", "priority-assist-register",
        lambda r: {"product": r.choice([*STRAND, "Skylark", "Tether"]),
                   "who": r.choice(["my mother", "my father", "my neighbour", "my grandmother", "my husband"]),
                   "device": r.choice(["a fall alarm", "a telecare pendant", "a heart monitor", "an oxygen monitor"])},
        ["Register for priority help", "Priority Assist", "Medical device on the broadband", "Vulnerable customer"],
        ["{who} has {device} that runs on the broadband. Is there a priority list?",
         "How do I register {who} for Priority Assist? They rely on {device}.",
         "{who} uses {device} on the internet. can you put them on a list",
         "I'm carer for {who}, who has {device}. What happens if the line goes down?",
         "Is Priority Assist free? {who} has {device}.",
         "Can a family member sign someone up for priority help? {who} depends on {device}."])
def _(s: dict) -> Reply:
    return (["Priority Assist is free, and a carer or family member can register on someone's behalf.",
             f"You can sign up at {ASSIST_URL} or by calling {PHONE}.",
             "Any loss of service for a registered customer is then handled as urgent."],
            [ASSIST_URL, "free"])


@intent("recycling", "hardware", "device-recycling",
        lambda r: {"product": "Not sure", "old": r.choice(["an old phone", "two old routers", "a TV box from another company",
                                                          "a drawer of old phones"])},
        ["Recycling old devices", "What do I do with old phones?", "Recycle", "Old router"],
        ["I have {old}. Do you take them for recycling?",
         "Can I recycle {old} with Larkspur even if it's not yours?",
         "recycle {old}?",
         "How does your recycling work? I've got {old}.",
         "Is there a charge to recycle {old}?",
         "I want to get rid of {old} responsibly."])
def _(s: dict) -> Reply:
    return (["We recycle old phones, routers and TV boxes of any brand for free.",
             "Request a free recycling bag in the Larkspur app, remove any SIM and memory cards, reset the device and post the bag."],
            ["recycling bag", "any brand"])


# ---------------------------------------------------------------------------------------------------------
# Ticket composition: wrappers, tones and small corruptions around the intent's core text.
# ---------------------------------------------------------------------------------------------------------
OPENERS = ["", "", "", "", "Hello,", "Hi,", "Hi there,", "Hi Larkspur,", "Good morning,", "Good evening,",
           "Dear Larkspur team,", "To whom it may concern,", "Hey,", "Hello support,", "Dear Sir or Madam,"]
CONTEXT = ["I've been a customer for {years} years.", "I work from home so this matters.",
           "Sorry if this is the wrong place to ask.", "I tried the chat in the app but it timed out.",
           "My partner usually handles this but is away.", "I'm not very good with technology.",
           "I've read the FAQ already.", "Writing from my phone, sorry for typos.",
           "I'd rather not phone if it can be sorted by email.", "This is my first time contacting you.",
           "English is not my first language, sorry.", "I looked on the forum but found nothing."]
DETAILS = ["I rang last week and was told someone would email me, but nobody did.",
           "My neighbour says she has had the same thing.", "I've attached nothing because I don't know what to send.",
           "We have three teenagers in the house, so you can imagine the complaints.",
           "I also posted on the community forum but nobody answered.", "I'm usually very happy with Larkspur.",
           "It's not the first time, although last time it sorted itself out.",
           "I'd appreciate a reply in writing so I have it for my records.",
           "I'm away for work on Thursday and Friday, so email is best.",
           "My account number should be on this email, but tell me if you need it.",
           "To be fair the engineer who came last year was great.", "I've checked the app and it says nothing useful."]
ANGRY = ["This is not acceptable.", "Really disappointed, to be honest.", "Third time I'm writing about this.",
         "I expect a proper answer this time.", "Honestly fed up.", "Sort it out."]
CLOSERS = ["", "", "Thanks", "Thanks in advance", "Many thanks", "Cheers", "Regards", "Kind regards",
           "Thank you for your help", "Appreciate it", "Thx", "Best", "Looking forward to your reply"]
TONES = ["neutral"] * 5 + ["polite"] * 3 + ["angry"] * 2 + ["terse"] * 2 + ["rambling", "casual", "anxious"]
ANXIOUS = ["I'm quite worried about this.", "Please let me know as soon as you can.", "I don't know what else to do."]


def typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def compose(it: Intent, body_tpl: str, slots: dict, customer: str, rng: random.Random) -> tuple[str, str, str]:
    """(subject, body, tone) of one ticket."""
    tone = rng.choice(TONES)
    core = body_tpl.format(**slots)
    core = core[0].upper() + core[1:] if tone != "casual" else core
    subject = rng.choice(it.subjects).format(**slots)
    first, last = customer.split(" ", 1)
    parts: list[str] = []
    opener = rng.choice(OPENERS) if tone not in ("terse",) else ""
    if opener:
        parts.append(opener)
    if tone == "rambling":  # the long tickets: context before the point, details after it
        parts += [c.format(years=rng.randint(2, 15)) for c in rng.sample(CONTEXT, 2)]
    elif tone in ("neutral", "polite") and rng.random() < 0.3:
        parts.append(rng.choice(CONTEXT).format(years=rng.randint(2, 15)))
    parts.append(core)
    if tone == "rambling":
        parts += rng.sample(DETAILS, rng.choice([2, 3]))
    elif tone in ("neutral", "polite", "anxious") and rng.random() < 0.2:
        parts.append(rng.choice(DETAILS))
    if tone == "angry":
        parts.append(rng.choice(ANGRY))
        if rng.random() < 0.4:
            subject = subject.upper()
    if tone == "anxious":
        parts.append(rng.choice(ANXIOUS))
    closer = rng.choice(CLOSERS) if tone not in ("terse", "angry") else rng.choice(["", "", "Regards"])
    sig = rng.choice(["", first, first, customer, f"{first[0]}. {last}", f"{first} {last[0]}."])
    tail = ", ".join(x for x in (closer, sig) if x) if closer and sig and rng.random() < 0.5 else \
        "\n".join(x for x in (closer, sig) if x)
    if tail:
        parts.append(tail)
    sep = " " if tone in ("terse", "casual") or rng.random() < 0.4 else "\n\n"
    body = sep.join(parts[1:] if opener else parts)
    if opener:
        body = f"{opener}\n{body}"
    if tone == "casual":
        body = body.lower()
        subject = subject.lower()
    if rng.random() < 0.15:
        body = typo(body, rng)
    if rng.random() < 0.2:  # typed on a phone or a Mac: typographic apostrophes
        body = body.replace("'", "\u2019")
    return subject, body, tone


def render_reply(first: str, sentences: list[str], tone: str) -> str:
    if tone == "angry" and not sentences[0].startswith(("Sorry", "We are sorry")) and sum(map(len, sentences)) < 230:
        sentences = ["We are sorry for the trouble.", *sentences]
    return f"{GREETING.format(first=first)}\n\n{' '.join(sentences)}\n\n{SIGNOFF}"


# ---------------------------------------------------------------------------------------------------------
# Human scores for the judge: a plausible answer to a test item and a person's pass/fail verdict under
# rubric.md, half of them passing. The answers are the reference, a reworded reference (pass), or the
# reference with one fault a reviewer would reject (fail).
# ---------------------------------------------------------------------------------------------------------
HUMAN_KINDS = ["reference", "reworded", "exclaim", "dear", "no_signoff", "wrong_fact", "chatty", "reference",
               "reworded", "blame", "reference", "reworded", "exclaim", "wrong_fact", "no_signoff", "reference",
               "reworded", "reworded", "dear", "reference"]


def _wrong(fact: str) -> str:
    """A plausible wrong value for a fact: another number, another address."""
    m = re.search(r"\d+", fact)
    if m:
        n = int(m.group(0))
        return fact[:m.start()] + str(n * 2 if n < 50 else n + 7) + fact[m.end():]
    if "larkspur.example/" in fact:
        return "larkspur.example/help"
    if "@" in fact:
        return "support@larkspur.example"
    return {"solid red": "flashing green", "sticker": "box it came in", "not refundable": "refundable",
            "not refunded": "refunded", "not covered": "covered"}.get(fact, "")


def human_answer(kind: str, first: str, sentences: list[str], facts: list[str], rng: random.Random) -> tuple[str, float, str]:
    body = " ".join(sentences)
    if kind == "reference":
        return render_reply(first, sentences, "neutral"), 1.0, "the reference reply"
    if kind == "reworded":
        lead = rng.choice(["Thanks for getting in touch.", "Thank you for your message."])
        return f"Hi {first},\n\n{lead} {body}\n\nKind regards,\nThe Larkspur Support Team", 1.0, \
            "reworded, same facts, house voice kept"
    if kind == "exclaim":
        return f"Hi {first},\n\nGreat news! {body} We are always happy to help!\n\nKind regards,\nThe Larkspur Support Team", \
            0.0, "exclamation marks"
    if kind == "dear":
        return f"Dear Customer,\n\n{body}\n\nKind regards,\nThe Larkspur Support Team", 0.0, "wrong greeting"
    if kind == "no_signoff":
        return f"Hi {first},\n\n{body}\n\nThanks,\nLarkspur", 0.0, "wrong sign-off"
    if kind == "wrong_fact":
        for f in facts:
            w = _wrong(f)
            if w and f in body:
                return f"Hi {first},\n\n{body.replace(f, w, 1)}\n\n{SIGNOFF}", 0.0, f"wrong fact: {w!r} for {f!r}"
        kind = "chatty"
    if kind == "chatty":
        return (f"Hi {first},\n\nOh no, that sounds super frustrating \U0001F629 No worries though, we have got you "
                f"covered. {body} Hope this helps and have an awesome day \U0001F60A\n\n{SIGNOFF}"), 0.0, \
            "chatty, emoji, filler"
    # blame: right facts, but the customer is told off
    return (f"Hi {first},\n\nYou should have read the help pages before writing to us. {body}\n\n{SIGNOFF}"), 0.0, \
        "blames the customer"


# ---------------------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------------------
_PUNCT = re.compile(r"[^\w\s]")


def words_of(item_input: dict) -> set[str]:
    """The harness's leakage view of an item: its input values, NFKC, casefolded, punctuation removed."""
    text = unicodedata.normalize("NFKC", " ".join(str(v) for v in item_input.values())).casefold()
    return set(_PUNCT.sub(" ", text).split())


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def make_item(it: Intent, body_tpl: str, rng: random.Random, item_id: str) -> dict:
    slots = it.slots(rng)
    customer = rng.choice(CUSTOMERS)
    first = customer.split(" ")[0]
    subject, body, tone = compose(it, body_tpl, slots, customer, rng)
    sentences, facts = it.reply(slots)
    reply = render_reply(first, sentences, tone)
    return {
        "id": item_id,
        "input": {"customer": customer, "product": it.product(slots), "subject": subject, "body": body},
        "expected": reply,
        "expected_doc_ids": it.docs,
        "metadata": {"first_name": first, "facts": facts, "intent": it.key, "team": it.team, "tone": tone},
        "_sentences": sentences,
    }


def build() -> tuple[list[dict], list[dict]]:
    rng = random.Random(SEED)
    test: list[dict] = []
    train: list[dict] = []
    for it in INTENTS:
        for k in range(TEST_PER_INTENT):
            test.append(make_item(it, it.bodies[k], rng, "tmp"))
    test_words = [words_of(t["input"]) for t in test]
    seen_bodies = {t["input"]["body"] for t in test}
    for it in INTENTS:
        pool = it.bodies[TEST_PER_INTENT:]
        for k in range(TRAIN_PER_INTENT):
            for _attempt in range(50):
                cand = make_item(it, pool[k % len(pool)], rng, "tmp")
                w = words_of(cand["input"])
                if cand["input"]["body"] not in seen_bodies and max(jaccard(w, t) for t in test_words) < MAX_JACCARD:
                    break
            else:
                raise SystemExit(f"could not draw a train ticket for {it.key} distinct from the test split")
            seen_bodies.add(cand["input"]["body"])
            train.append(cand)
    random.Random(SEED + 1).shuffle(test)
    random.Random(SEED + 2).shuffle(train)
    for n, row in enumerate(test, 1):
        row["id"] = f"test-{n:04d}"
    for n, row in enumerate(train, 1):
        row["id"] = f"train-{n:04d}"
    # Human pass/fail scores of one plausible answer each, on HUMAN_LABELS test items of different intents.
    hrng = random.Random(SEED + 3)
    picked: list[dict] = []
    used: set[str] = set()
    for row in hrng.sample(test, len(test)):
        if row["metadata"]["intent"] not in used and len(picked) < HUMAN_LABELS:
            picked.append(row)
            used.add(row["metadata"]["intent"])
    picked.sort(key=lambda r: r["id"])
    for row, kind in zip(picked, HUMAN_KINDS, strict=True):
        answer, score, why = human_answer(kind, row["metadata"]["first_name"], row["_sentences"],
                                          row["metadata"]["facts"], hrng)
        row["human"] = {"score": score, "answer": answer}
        row["metadata"]["human_note"] = why
    for row in test + train:
        del row["_sentences"]
    return test, train


def write(test: list[dict], train: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    docs_dir = OUT / "docs"
    docs_dir.mkdir(exist_ok=True)
    for stale in docs_dir.glob("*.md"):
        if stale.stem not in DOCS:
            stale.unlink()
    for doc_id, text in DOCS.items():
        (docs_dir / f"{doc_id}.md").write_text(text.strip() + "\n", encoding="utf-8")
    for name, rows in (("test", test), ("train", train)):
        with (OUT / f"{name}.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(test)} test, {len(train)} train, {len(DOCS)} docs")


# ---------------------------------------------------------------------------------------------------------
# Check what is on disk
# ---------------------------------------------------------------------------------------------------------
STYLE = re.compile(r"\A\s*Hi [^\s,!]+,[ \t]*\n.*?\S.*?\n[ \t]*Kind regards,[ \t]*\n[ \t]*The Larkspur Support Team\s*\Z",
                   re.DOTALL)


def _token_counter() -> Callable[[str], int] | None:
    """Gemma 3 token counts via llama_cpp when the harness and its model are installed; else None."""
    try:
        import llama_cpp  # noqa: F401

        from harness.models.gguf import ensure_gguf
    except ImportError:
        return None
    try:
        import contextlib
        import io
        import os

        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull), contextlib.redirect_stdout(io.StringIO()):
            llm = llama_cpp.Llama(model_path=str(ensure_gguf()), vocab_only=True, verbose=False)
    except Exception:  # noqa: BLE001 - counting tokens is a nicety of the checker
        return None
    return lambda text: len(llm.tokenize(text.encode("utf-8"), add_bos=False))


def check() -> int:
    sys.path.insert(0, str(OUT))
    sys.dont_write_bytecode = True  # no __pycache__ inside the eval set folder
    from replyscorers import facts as facts_scorer  # the eval set's own scorer: the check agrees with it

    problems: list[str] = []
    docs = {p.stem: p.read_text(encoding="utf-8") for p in sorted((OUT / "docs").glob("*.md"))}
    splits = {n: [json.loads(line) for line in (OUT / f"{n}.jsonl").read_text(encoding="utf-8").splitlines()]
              for n in ("test", "train")}
    test, train = splits["test"], splits["train"]
    print(f"counts: test={len(test)} train={len(train)} docs={len(docs)} intents={len(INTENTS)}")
    if len(test) < 100:
        problems.append("fewer than 100 test items")
    if len(train) < 300:
        problems.append("fewer than 300 train items")
    ids = [r["id"] for r in test + train]
    if len(set(ids)) != len(ids):
        problems.append("duplicate ids")

    class _Item:  # the attributes a python scorer reads from harness.records.EvalItem
        def __init__(self, row: dict):
            self.id, self.input, self.expected, self.metadata = row["id"], row["input"], row["expected"], row["metadata"]

    count = _token_counter()
    tokens: list[int] = []
    sentences: list[int] = []
    for name, rows in splits.items():
        for r in rows:
            rid, exp, meta = r["id"], r["expected"], r["metadata"]
            if set(r["input"]) != {"customer", "product", "subject", "body"}:
                problems.append(f"{rid}: input keys {sorted(r['input'])}")
            if any(not isinstance(v, str) or not v.strip() for v in r["input"].values()):
                problems.append(f"{rid}: empty input field")
            first = r["input"]["customer"].split(" ")[0]
            if meta["first_name"] != first or not exp.startswith(f"Hi {first},\n\n"):
                problems.append(f"{rid}: greeting does not use the first name {first!r}")
            if not STYLE.search(exp) or not exp.endswith("\n\n" + SIGNOFF):
                problems.append(f"{rid}: reply not in the house form")
            if "!" in exp:
                problems.append(f"{rid}: exclamation mark in the reply")
            body = exp.split("\n\n")[1]
            n_sent = len(re.findall(r"[.?](?:\s|$)", body))
            sentences.append(n_sent)
            if not 2 <= n_sent <= 5:
                problems.append(f"{rid}: {n_sent} sentences between greeting and sign-off")
            if not meta.get("facts"):
                problems.append(f"{rid}: no facts")
            score, why = facts_scorer(exp, exp, _Item(r))
            if score != 1.0:
                problems.append(f"{rid}: reference misses its own facts ({why})")
            kb = " ".join(docs.get(d, "") for d in r["expected_doc_ids"]).casefold()
            for d in r["expected_doc_ids"]:
                if d not in docs:
                    problems.append(f"{rid}: unknown doc {d}")
            for f in meta["facts"]:
                if f.casefold() not in re.sub(r"\s+", " ", kb):
                    problems.append(f"{rid}: fact {f!r} is in none of its expected docs {r['expected_doc_ids']}")
            if count is not None:
                tokens.append(count(exp))
                if tokens[-1] > MAX_REPLY_TOKENS:
                    problems.append(f"{rid}: reply is {tokens[-1]} tokens (> {MAX_REPLY_TOKENS})")
            if "human" in r:
                if name != "test":
                    problems.append(f"{rid}: human score on a train item")
                h = r["human"]
                if not (isinstance(h, dict) and h.get("score") in (0.0, 1.0) and isinstance(h.get("answer"), str)):
                    problems.append(f"{rid}: human label {h!r}")

    test_words = [(r["id"], words_of(r["input"])) for r in test]
    worst = (0.0, "", "")
    for r in train:
        w = words_of(r["input"])
        for tid, tw in test_words:
            j = jaccard(w, tw)
            if j > worst[0]:
                worst = (j, tid, r["id"])
    if worst[0] >= MAX_JACCARD:
        problems.append(f"near-duplicate test/train pair {worst[1]}~{worst[2]} (Jaccard {worst[0]:.2f})")
    bodies = Counter(r["input"]["body"] for r in test + train)
    if any(c > 1 for c in bodies.values()):
        problems.append(f"{sum(c > 1 for c in bodies.values())} duplicated ticket bodies")
    print(f"overlap: most similar test/train pair {worst[1]}~{worst[2]} Jaccard {worst[0]:.2f} "
          f"(limit {MAX_JACCARD}; the harness warns at 0.85)")

    humans = [r["human"]["score"] for r in test if "human" in r]
    print(f"human labels: {len(humans)} test items, {sum(humans):.0f} pass / {len(humans) - sum(humans):.0f} fail")
    if len(humans) != HUMAN_LABELS:
        problems.append(f"{len(humans)} human labels (want {HUMAN_LABELS})")
    for name, rows in splits.items():
        teams = Counter(r["metadata"]["team"] for r in rows)
        tones = Counter(r["metadata"]["tone"] for r in rows)
        print(f"{name}: teams {dict(sorted(teams.items()))}")
        print(f"{name}: tones {dict(sorted(tones.items()))}")
    lengths = sorted(len(r["input"]["body"].split()) for r in test + train)
    print(f"ticket body (words): min={lengths[0]} median={lengths[len(lengths) // 2]} max={lengths[-1]}")
    print(f"reply sentences: min={min(sentences)} max={max(sentences)}")
    if tokens:
        tokens.sort()
        print(f"reply tokens (Gemma 3): min={tokens[0]} median={tokens[len(tokens) // 2]} max={tokens[-1]}")
    else:
        print("reply tokens: not counted (llama_cpp or the harness model not installed)")
    customers = {r["input"]["customer"] for r in test + train}
    non_ascii = sum(any(ord(c) > 127 for c in r["input"]["customer"] + r["input"]["body"]) for r in test + train)
    print(f"customers: {len(customers)} distinct names; {non_ascii} tickets with non-ASCII text")

    if problems:
        print(f"CHECK FAILED ({len(problems)} problems):")
        for p in problems[:50]:
            print("  -", p)
        return 1
    print("CHECK OK")
    return 0


if __name__ == "__main__":
    if "--check" not in sys.argv[1:]:
        write(*build())
    sys.exit(check())
