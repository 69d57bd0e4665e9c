#!/usr/bin/env python3
"""Build the demo eval set `evalsets/support-triage/` (test.jsonl, train.jsonl, README.md)
and check it.

Every ticket below was written by hand for this fictional company (Larkspur Telecom); the
script only labels, splits and writes them. Docs (docs/*.md) and task.yaml are static files
in the eval set folder. Running it twice gives byte-identical files.

Usage:
    python3 tools/make_demo_evalset.py            # write files, then run the checker
    python3 tools/make_demo_evalset.py --check    # only run the checker on what is on disk
"""
from __future__ import annotations

import difflib
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "evalsets" / "support-triage"

# Short aliases for doc ids, so the ticket tables below stay readable.
DOC = {
    "route": "team-routing",
    "prio": "priority-guidelines",
    "refund": "refund-policy",
    "credit": "outage-credits",
    "beacon": "product-beacon-router",
    "halo": "product-halo-mesh",
    "ember": "product-ember-tv",
    "orbit": "product-orbit-handsets",
    "strand": "plan-strand-fibre",
    "skylark": "plan-skylark-wireless",
    "harbor": "plan-harbor-business",
    "mobile": "mobile-tether-kite",
    "wander": "roaming-wander-pass",
    "security": "security-and-fraud",
    "sentinel": "addon-sentinel",
    "install": "installations-and-moves",
    "assist": "priority-assist-register",
    "billing": "billing-and-payments",
}

TEAMS = ["network", "hardware", "installations", "mobile", "accounts", "billing"]
PRIORITIES = ["low", "normal", "high", "urgent"]

# Each ticket: (subject, body, priority, refund_eligible, "doc aliases")
# U/H/N/L = urgent/high/normal/low; T/F = refund eligible or not.
U, H, N, L = "urgent", "high", "normal", "low"
T, F = True, False

NETWORK = [
    ("Internet down", "No internet since about 7 this morning. The ring light on the router is red. Strand 500, nothing has changed on our side.", H, F, "strand beacon prio"),
    ("THIRD DAY WITHOUT INTERNET", "This is now the third day with no broadband at all. I reported it on Monday, it's Wednesday night and still nothing. I work from home and this is costing me money. What are you going to do about it?", H, T, "credit route prio"),
    ("evening slowdown", "hi, every night from around 7 till 11 my speed drops to 30-40 mbps on strand 900. during the day i get 850+. is the area overloaded?", N, F, "strand prio"),
    ("HB-20931 completely offline", "Our shop has had no connection since 9:10 this morning and it's now ten past three. Card machines are down and we're turning customers away. We were promised 4 hours. Get someone here.", U, T, "harbor credit prio"),
    ("Wind = no internet", "Every time it gets windy the Skylark connection drops for a few minutes and then comes back. It makes video calls impossible on blustery days.", N, F, "skylark prio"),
    ("Mum's alarm - no broadband", "My mother is 86 and her fall alarm runs through her broadband. The internet has been off since last night and the alarm base is flashing an error. She lives alone. Please can someone look at this as a priority.", U, F, "assist prio"),
    ("Static IP question", "Quick one: how do I find out what our static IP address is? It's for setting up remote access to the office NAS. Account HB-11820.", L, F, "harbor"),
    ("Custom DNS", "Am I allowed to use my own DNS servers (e.g. 1.1.1.1) on a Strand connection, or does Larkspur force its own?", L, F, "strand route"),
    ("outage millbrook??", "nothing working here for about an hour. strand 150. is there an outage in millbrook or is it just me", H, F, "strand prio"),
    ("Keeps dropping", "The connection cuts out every 20 minutes or so and comes back by itself after a minute. Been going on for about a week now. The router is in the same spot it's always been.", N, F, "strand prio"),
    ("no internet 2 days", "hi my internet hasnt worked since saturday morning and its now monday afternoon. ive restarted everything. red light on router. please sort", H, T, "credit strand"),
    ("Office internet crawling", "HB-30412. Since lunchtime our upload has dropped to about 2 Mbps and video calls with clients keep freezing. It's not down, just unusable for anything heavy. We're on the 1 Gbps package.", H, F, "harbor prio"),
    ("Latency spikes", "Not a huge problem but I'm getting ping spikes of 200+ ms every few minutes in online games. Wired connection, Strand 500. Anything you can check on the line?", N, F, "strand prio"),
    ("Thank you", "Just wanted to say the engineer who fixed the fault on our road on Friday was brilliant. Internet has been rock solid since. Thanks.", L, F, "prio"),
    ("Restaurant down", "We're HB-40277, a restaurant on Quay Street. The internet went down a few minutes ago in the middle of dinner service and our booking system and tills are offline. Please treat this as an emergency.", U, F, "harbor prio"),
    ("broadband gone since the storm", "We're on Skylark out at Fenwick farm. Lost the connection during Thursday's storm and it's still down now, Saturday morning. The receiver outside looks fine, lights on, just no internet.", H, T, "skylark credit route"),
    ("Speed", "Speed is awful today. Strand 150.", N, F, "strand prio"),
    ("IPv6?", "Does Larkspur support IPv6 on home fibre yet? My router settings only show an IPv4 address.", L, F, "strand"),
    ("Heart monitor can't upload", "My husband has a heart monitor that sends readings to St Anne's every night over our Wi-Fi. We've had no internet since 5pm today and the clinic will ring if the readings stop. He's on your Priority Assist list.", U, F, "assist prio"),
    ("Unstable since the works", "There was planned work on our street last week (you sent a text about it) and since then the line drops a couple of times a day. Can someone check whether everything was reconnected properly?", N, F, "strand prio"),
    ("Pages slow to start but speed test fine", "Weird one. Speed tests show 480 Mbps but web pages take ages to start loading, like 5-10 seconds before anything appears. Different browsers, different devices, same thing. Could it be a DNS problem on your side?", N, F, "strand route"),
    ("Nothing works", "Internet off. Phones say connected to wifi but no internet. Tried turning it off and on. Please help, the kids have exams and need it for revision.", H, F, "prio strand"),
    ("No service on Ashby Road since yesterday", "Our whole street has been without broadband since about 4pm yesterday. It's 8pm today now, so well over a day. The neighbours are with Larkspur as well and it's the same for them.", H, T, "credit prio"),
    ("Does Skylark slow down in the evening?", "Before I renew, does Skylark normally get slower in the evenings? Just trying to decide whether to stay on it or wait for fibre to reach our village.", L, F, "skylark"),
    ("packet loss HB-55102", "Seeing 8-12% packet loss to everything since this morning. The VoIP phones are breaking up and the card reader keeps timing out. The line is up but it's bad.", H, F, "harbor prio"),
    ("Is there an outage?", "Hello, is there a known problem in Carrow town centre? Our internet stopped about 20 minutes ago. Thanks.", H, F, "prio"),
    ("4 days no internet and nobody cares", "Four days. FOUR DAYS without internet. Every time I call I'm told a technician is looking at it. I pay €49 a month for Strand 900 and I've had nothing since Friday. Fix it or I'm leaving.", H, T, "credit strand"),
    ("Speed well below the guarantee", "I'm on Strand 500 and for the last two weeks wired speed tests have been between 120 and 180. Your site says the minimum is 250. What happens now?", N, F, "strand credit"),
    ("lost connection overnight", "Internet dropped out at some point overnight and hasn't come back. Ring light is solid red. We're Strand 150 in Dunmere.", H, F, "beacon strand"),
    ("Total outage, whole office", "Account HB-10093. No internet in the office since 8:30. It's 2:45pm. Twelve staff sitting idle. This is well past your four hour promise.", U, T, "harbor credit"),
    ("Drops at night", "Around 2-3am every night the internet goes off for about ten minutes. Only noticed because my backups keep failing. Could someone look at the line?", N, F, "strand prio"),
    ("Skylark down", "no internet since about lunchtime. skylark. the lights on the indoor unit are orange instead of green", H, F, "skylark prio"),
    ("Maintenance tonight?", "Got a text saying there's planned maintenance in our area. What time will the internet go off, and roughly for how long?", L, F, "credit"),
    ("Broadband outage - I'm his carer", "I'm the carer for Mr Doyle at 14 Kell Lane. His telecare pendant goes through the broadband and the line has been dead since this morning. He can't get out of bed without help. Please prioritise.", U, F, "assist prio"),
    ("Upload stuck at 5", "Download is fine but upload has been stuck at 5 Mbps for three days on Strand 900. Should be way higher. Uploading work files is painful.", N, F, "strand prio"),
    ("internet down 30 hrs", "Internet went off yesterday around 6am and it's still off now (lunchtime today). Already rang once. Any update? Strand 500, acct 5520-118", H, T, "credit strand"),
    ("Salon offline", "Hi, it's Bella's Hair Studio, HB-61234. Internet's been down since we opened at 9. It's nearly 11 now. Our booking tablet and card reader both need it. Please help!!", U, F, "harbor prio credit"),
    ("Skylark disconnecting all the time", "For a month now Skylark disconnects five or six times a day, even on calm days. Each time it's gone for a couple of minutes. Can you see anything on your side?", N, F, "skylark prio"),
    ("Loving the new fibre", "Just moved from copper to Strand 900 and the difference is unreal. Keep it up.", L, F, "prio"),
    ("Buffering on every app", "The Ember box is buffering on every app at once. My laptop is slow too so I don't think it's the box: speed test says 12 Mbps on Strand 500.", N, F, "ember strand route"),
    ("Can't connect since yesterday", "No internet at all since yesterday at 3pm. It's 10am now and I need it for work. Any news?", H, F, "prio credit"),
    ("Dental practice offline", "HB-77310, Riverside Dental. Total loss of internet since 7:45 this morning. Our patient records are cloud based so we're cancelling appointments. It's 1pm. Please escalate.", U, T, "harbor credit"),
    ("ping to Frankfurt", "What sort of ping should I expect to game servers in Frankfurt on Strand 500? I'm getting around 28 ms, just wondering if that's normal.", L, F, "strand"),
    ("Slow when it rains", "Skylark goes really slow whenever it rains heavily. Is there anything that can be done, or is that just how it is?", N, F, "skylark"),
    ("total outage", "Broadband completely dead at home since Tuesday evening. It's Thursday morning. Nobody has told me anything. Strand 150.", H, T, "credit strand"),
    ("Staff can't VPN in (HB-23190)", "Our staff can't connect to the office VPN from home since your maintenance last night. The office internet itself works and browsing is fine, but inbound connections to our static IP time out.", H, F, "harbor prio"),
    ("no net", "no net since 6. skylark. pls fix", H, F, "skylark prio"),
    ("Internet down, dad has a pendant", "Internet down since 11am. My dad has a falls pendant that needs it and he is 91.", U, F, "assist prio"),
    ("How long do outages take?", "Just curious: when there's an area outage, how long does it usually take you to fix? I'm deciding whether I need a backup 4G dongle for working from home.", L, F, "credit route"),
    ("Warehouse down (HB-90014)", "Warehouse connection is completely down. It went at 4am according to our monitoring, it's now 10:30. Scanners and label printers all offline. We need the 4 hour SLA honoured.", U, T, "harbor credit"),
    ("Speeds halved since last week", "Hi there, I'm on Strand 900 and wired tests used to show 880-900, but since last Wednesday I only get 400-450, sometimes less. Nothing changed here. Could you check the line please?", N, F, "strand prio"),
    ("intermittent", "keeps dropping. 3rd time this hour. sort it out", N, F, "prio"),
    ("Down since Friday", "Hello, we have been without internet since Friday evening and it is now Sunday. We are on the Skylark plan. The receiver outside has its green light on. Could you please check whether there is a problem with the mast?", H, T, "skylark credit"),
    ("Slow every evening", "HB-33871. Every evening from about 6 our connection slows to a crawl. We run a bar and the guest Wi-Fi and card machines struggle. Daytime is fine.", H, F, "harbor prio"),
    ("IP on a spam list", "Some websites keep showing me captchas and one says my IP address is on a spam list. Can I get a different IP on my home connection?", N, F, "strand route"),
    ("Gone again", "Internet's gone again. Second time this week it's dropped completely. It's been off about 2 hours this time.", H, F, "prio"),
    ("Outage map?", "Is there an outage map on your website somewhere? I couldn't find one.", L, F, "route"),
    ("Working from home, please hurry", "I run my accountancy business from home on a Strand 900 plan. The internet has been down for 5 hours. I know you have business plans with faster fixes but I'm on the home one. Can you please hurry?", H, F, "strand credit prio"),
    ("HB-44120 slow", "Speeds on our office line are about a tenth of normal since the weekend. Still connected, just very slow.", H, F, "harbor prio"),
    ("No internet since yesterday afternoon", "Hi, our broadband has been off since 2pm yesterday. It's 5pm now, so more than a day. Please can you let me know what's happening. Thanks, Priya", H, T, "credit"),
    ("Do you throttle?", "Does Larkspur slow down particular kinds of traffic, like big downloads or game updates, at busy times?", L, F, "strand"),
    ("Some apps work, some don't", "Odd problem. WhatsApp and Spotify work but most websites won't load at all, they just time out. Started this afternoon. Strand 500.", N, F, "strand route"),
    ("Harrow estate outage", "Harrow estate has been off since 7pm yesterday. It's 9pm now. At least twenty houses. What is going on?", H, T, "credit"),
    ("Café internet down", "HB-52908. The café's internet has been off for about 40 minutes. We've restarted the router twice. Customers are complaining and we can't take card payments.", U, F, "harbor prio"),
    ("VPN keeps disconnecting", "My work VPN disconnects every half hour or so since about Tuesday. Colleagues on other providers don't have the problem. Is something changing connections on your side?", N, F, "strand prio"),
    ("Red light", "Router light has been red since I got up. That means no line, right? What should I do? Nothing is working.", H, F, "beacon strand"),
    ("More than I pay for", "My speed test says 540 Mbps on Strand 500. Is it normal to get more than the plan speed? Not complaining!", L, F, "strand"),
    ("Skylark slow for two weeks", "Skylark has been slow for the last fortnight, around 20 Mbps most of the day when we normally get 150. No storms, nothing moved. Can you see something on the mast?", N, F, "skylark prio"),
    ("MTU", "What MTU should I set on my own firewall for a Strand connection? Getting odd fragmentation on a few sites.", L, F, "strand"),
    ("random disconnects", "Internet randomly dies for 30 seconds at a time, maybe 10 times a day. It's driving me up the wall. Every device, wired and wifi.", N, F, "prio"),
    ("Broadband down and dad's alarm beeping", "Dad's telecare box keeps beeping and saying no connection. Broadband has been off since around 9am. He's 88 and on his own until I get there tonight.", U, F, "assist prio"),
    ("Line down 28 hours", "Dear Larkspur, our home connection failed at 7am yesterday and has not returned; it is now 11am. I have already restarted the router several times. I would appreciate an update and an estimated fix time.", H, T, "credit strand"),
    ("Shop down HB-81455", "No internet at the shop at all. It started about an hour ago. Please send someone, it's our busiest day.", U, F, "harbor prio"),
    ("slow upload harbor", "HB-12077 upload keeps dipping under 20 Mbps on a 300 symmetrical line. Cloud backups are failing overnight.", H, F, "harbor prio"),
    ("Is it you or me?", "Internet stopped about 10 minutes ago. Router light is red. Is there a fault in Dunmere or have I broken something?", H, F, "beacon prio"),
    ("Outage - whole village", "The whole of Ellerby has had no broadband since Sunday lunchtime and it's Tuesday. Several of us on Skylark. Please tell us when it'll be back.", H, T, "skylark credit"),
    ("Suggestion", "It would be great if the app could show live outage updates for my street instead of me having to ring. Just a thought.", L, F, "prio"),
    ("Wi-fi fine, internet not", "Devices connect to the Wi-Fi fine but there's no internet on any of them. Has been like this since early this afternoon. Ring light is white though, which is confusing.", H, F, "beacon prio"),
    ("Hotel guests without internet", "We're a small hotel, account HB-66012. The internet has been completely down since 6am and it's 4pm. Guests are checking out early. This is unacceptable for a business line.", U, T, "harbor credit"),
    ("connection speed varies a lot", "Speed is all over the place on my Skylark line: 200 one minute, 15 the next. Is that normal for this kind of connection?", N, F, "skylark"),
    ("Down an hour, oxygen machine", "Internet down for about an hour. My wife's home oxygen monitor reports over the internet to the respiratory team and it's showing offline. We're registered for Priority Assist.", U, F, "assist prio"),
    ("No broadband Mon-Wed", "My broadband was down from Monday morning and still isn't back (it's Wednesday). It's a Strand 150 line. Please get it fixed.", H, T, "credit strand"),
    ("speed question", "Why does my laptop get 900 on a cable but only about 300 on Wi-Fi in the same room? Is that a line problem?", L, F, "strand"),
    ("Jitter on calls", "Teams calls keep getting robotic voices for a second or two, several times an hour. Speed tests look fine. Line issue?", N, F, "strand prio"),
    ("outage??", "is the internet down in carrow? mine's been out 15 mins", H, F, "prio"),
    ("Harbor outage, gym", "HB-37760, Ironworks Gym. Total outage since 5:30am when we opened. It's 11:15. Door entry system runs on it, members are queuing outside.", U, T, "harbor credit"),
    ("Kept dropping yesterday", "Just reporting that the line was dropping all of yesterday evening. It's a bit better today but I'd like someone to check it, as it happened last week too.", N, F, "prio"),
    ("Skylark completely off", "Skylark completely off since this morning. Receiver outside looks normal. Indoor unit says no service. Nothing connects.", H, F, "skylark prio"),
    ("Is Strand affected by the roadworks?", "There are roadworks outside with your logo on the van. Will our internet be affected and for how long?", L, F, "route"),
    ("Down 2 days, still no engineer", "Day two with no internet at all. I reported it the day before yesterday. Every time I ring it's 'being investigated'. I'm on Strand 500.", H, T, "credit strand"),
]

HARDWARE = [
    ("Router dead", "Our Beacon has no light at all this morning. Tried a different socket and a different plug. No internet in the house now.", H, F, "beacon prio"),
    ("Halo return", "Hi, I bought a Halo Duo and it arrived last Thursday. Our flat is small and honestly we don't need it. How do I send it back and get my money?", N, T, "halo refund"),
    ("Pod has an orange light", "One of my Halo pods has had an orange light since yesterday and the bedroom Wi-Fi is terrible. The other pod is white.", N, F, "halo"),
    ("Burning smell from pod", "One of the Halo pods in the hallway smells of burning plastic and is really hot to touch. I've unplugged it. Is it safe to plug the others back in?", U, F, "halo prio"),
    ("Ember remote won't pair", "The Ember 4K remote stopped working. New batteries, still nothing. The box itself is fine, I can use the app as a remote.", N, F, "ember"),
    ("Refund for router", "The new router you sent 3 days ago keeps rebooting itself every hour. I'd like a refund please, it's clearly faulty.", N, F, "beacon refund"),
    ("orbit s battery", "my orbit s battery goes from 100 to 0 by lunchtime now. bought it last spring. is that covered?", N, F, "orbit refund"),
    ("Cracked screen", "Dropped my Orbit Max on the kitchen floor and the screen's cracked across the corner. Can you fix it under warranty? It's only 4 months old.", N, F, "orbit refund"),
    ("Changed my mind about the Ember", "The Ember 4K arrived on Monday but we've decided to use the smart TV's own apps instead. It's still in the box. Can I return it for a refund?", N, T, "ember refund"),
    ("Skylark receiver full of water", "Last night's storm cracked the casing of the Skylark receiver and there's water inside it. We've had no internet since about midnight.", H, F, "skylark prio"),
    ("How do I add a pod?", "I've bought an extra Halo pod for the garden room. How do I add it to the two I already have?", L, F, "halo"),
    ("Phone getting really hot", "My Orbit Max gets so hot while charging that I can't hold it and the back has started to bulge. It's only a year old. What should I do?", U, F, "orbit prio"),
    ("Halo never arrived", "Order LK-558201, a Halo Trio. Tracking has said 'out for delivery' for four days. Where is it?", N, F, "halo refund"),
    ("Ember stuck on logo", "Ember box stuck on the flame logo since a software update last night. Unplugged it a few times already.", N, F, "ember"),
    ("Bought it at ElectroMart", "I bought a Halo Duo from ElectroMart two weeks ago (not from you) and want to return it because it doesn't cover the garage. Can you refund me?", N, F, "halo refund"),
    ("Change wifi password", "How do I change the Wi-Fi password on the Beacon? My teenager has given it to half the street.", L, F, "beacon"),
    ("Orbit Go for my mum", "I got my mum an Orbit Go. Is there a way to make the text bigger on it? She struggles to read messages.", L, F, "orbit"),
    ("Return Orbit S - not for me", "Hello. The Orbit S I ordered was delivered eight days ago. It's a nice phone but too small for my hands. I'd like to return it for a full refund. It's in perfect condition.", N, T, "orbit refund"),
    ("Router sparking!!", "The power adapter for our router made a crackling noise and sparked when I plugged it in. I pulled it out. There's a black mark on the socket. Please send a new one, we have no internet.", U, F, "beacon prio"),
    ("Halo stopped working after 2 months", "My Halo Trio stopped working properly after about two months: pods keep dropping off the network. I want my money back, not another one.", N, F, "halo refund"),
    ("Beacon 2 to Beacon 3", "I still have the old Beacon 2. Am I entitled to a Beacon 3, and would it make a difference?", L, F, "beacon"),
    ("Hail damage", "Hail smashed the front of the Skylark receiver on Tuesday. The indoor unit says 'no signal' and we have no internet at all.", H, F, "skylark prio"),
    ("ember hdmi", "what hdmi cable does the ember 4k need to do 4k? the picture only goes up to 1080", L, F, "ember"),
    ("Faulty Halo pod - arrived yesterday", "Halo Duo delivered yesterday. One pod won't power on at all, the other is fine. I'd rather just have my money back than wait for a replacement.", N, T, "halo refund"),
    ("Charging port loose", "Charging port on my Orbit S is loose. Cable only charges if I hold it at an angle. Had the phone about 7 months.", N, F, "orbit"),
    ("Router keeps restarting", "Beacon 3 restarts itself every evening around 8. The ring light goes blue for a few minutes, then back to white. Internet is fine otherwise.", N, F, "beacon"),
    ("Remote lost", "We've lost the Ember remote, probably down the sofa forever. Can I buy a new one?", N, F, "ember"),
    ("Ember freezes", "The picture on the Ember freezes every 20 minutes or so and I have to restart it. Only on the Ember, the TV's own apps are fine. We've had it since Christmas.", N, F, "ember"),
    ("Receiver has no lights", "The outdoor Skylark receiver has no power light and we have no internet. The indoor unit is on. Checked the plug.", H, F, "skylark prio"),
    ("Return phone within 14 days?", "Orbit Max delivered Saturday. Camera is worse than my old phone so I want to send it back. It's the 11th day today. Is that ok?", N, T, "orbit refund"),
    ("Second Ember remote", "Can you pair two remotes with one Ember box? The kids keep fighting over it.", L, F, "ember"),
    ("Water damage", "My Orbit S went through the washing machine in a jeans pocket. It won't turn on. Is there any chance it's covered?", N, F, "orbit refund"),
    ("Beacon admin page", "What's the address of the router admin page? I want to see what's connected.", L, F, "beacon"),
    ("halo app can't find pods", "Setting up a new Halo Duo, the Larkspur app keeps saying 'no pods found'. Both are lit up white. Help!", N, F, "halo"),
    ("Faulty Ember within a week", "Ember HD bought 5 days ago, delivered 4 days ago. Sound keeps cutting out on every app. I'd like to return it and get my €69 back.", N, T, "ember refund"),
    ("Replacement router not arrived", "Your team said a replacement Beacon would come by next-day courier. That was three days ago. We've had no internet since the old one died.", H, F, "beacon prio"),
    ("Orbit speaker crackles", "The earpiece speaker on my Orbit Max crackles during calls. Otherwise fine. About 5 months old.", N, F, "orbit"),
    ("Ember smoking", "There was a thin line of smoke coming out of the back of the Ember box last night. I unplugged it straight away. The kids were in the room. Very worried.", U, F, "ember prio"),
    ("Return my Halo Trio", "Ordered a Halo Trio, arrived 6 weeks ago, turns out we're moving to a flat. Can I return it?", N, F, "halo refund"),
    ("What do the router colours mean?", "Hi, what does a pulsing blue light on the Beacon mean? It did it for a few minutes last night.", L, F, "beacon"),
    ("Orbit S screen flickering", "Screen on my Orbit S has started flickering green lines. Haven't dropped it, promise. Had it 10 months.", N, F, "orbit"),
    ("Want a refund on the router", "Can I get a refund for the Beacon? I'm using my own router now and never took yours out of the box.", N, F, "beacon refund"),
    ("Dead router again", "Second dead Beacon this year. No lights, no internet. Please courier another one and maybe look into why they keep dying.", H, F, "beacon prio"),
    ("Halo pods warm", "Is it normal that the Halo pods are warm? Not hot, just warm.", L, F, "halo"),
    ("Orbit Go keypad", "A couple of buttons on my Orbit Go keypad have stopped working (the 5 and the 8). Phone's about 3 months old.", N, F, "orbit"),
    ("Didn't like the Ember", "Honestly the Ember menus are confusing and my husband hates it. We got it about ten days ago. Can we send it back for a refund?", N, T, "ember refund"),
    ("Skylark receiver tilted", "The bracket on the Skylark receiver has worked a bit loose and the unit has tilted downwards. Internet still works, maybe a little slower than before.", N, F, "skylark"),
    ("Beacon fan noise", "Is there supposed to be a fan in the Beacon 3? Ours has started making a faint whirring noise. Everything still works.", L, F, "beacon"),
    ("Refund for Orbit Max - faulty", "The Orbit Max I received on the 3rd won't charge past 60%. Today is the 10th. I'd like a refund rather than a repair, please.", N, T, "orbit refund"),
    ("Pod lost connection after move", "We moved one Halo pod upstairs and now it's orange all the time. Is it too far away?", N, F, "halo"),
    ("Where's my phone?", "Ordered an Orbit S a week ago, paid in full, still nothing and no tracking email. Order LK-602114.", N, F, "orbit"),
    ("Beacon overheating?", "The Beacon is very hot on top and there's a smell like hot electrics. I've switched it off for now. Please advise.", U, F, "beacon prio"),
    ("Is Halo any good with other routers?", "I don't have Larkspur broadband. Will a Halo Duo work with my current provider's router?", L, F, "halo"),
    ("ember voice search not working", "Voice search on the Ember 4K remote just says 'try again later'. Everything else works. Box is about a year old.", N, F, "ember"),
    ("Return Halo, 3 weeks", "I'd like to return the Halo Duo I got three weeks ago. It works fine, I just don't need it. Refund please.", N, F, "halo refund"),
    ("Beacon won't turn on after power cut", "We had a power cut last night and since it came back the router won't turn on. No ring light. No internet for the whole house.", H, F, "beacon prio"),
    ("warranty question", "How long is the warranty on an Orbit Max bought outright?", L, F, "orbit"),
    ("Broken on arrival", "The Halo Trio arrived this morning with one pod rattling inside, the casing is cracked. The courier obviously dropped it. I want a refund.", N, T, "halo refund"),
    ("Orbit keeps rebooting", "My Orbit S reboots itself several times a day since the last update. I'm losing calls. It's 14 months old.", N, F, "orbit"),
    ("Ember 4K vs HD", "Thinking of upgrading from the Ember HD to the 4K. Does the 4K one come with the voice remote or is that extra?", L, F, "ember"),
    ("Router light off, internet dead", "No light on the router and no internet. My son needs it for his online classes. Please send a replacement asap.", H, F, "beacon prio"),
    ("Can I keep my old Beacon?", "I'm leaving Larkspur next month. Do I have to send the router back or can I keep it?", L, F, "beacon"),
    ("halo pod died", "One of my Halo pods just died, no lights at all. The kit is just over a year and a half old. Any options?", N, F, "halo refund"),
    ("Phone won't charge wirelessly", "Orbit Max doesn't charge on my wireless pad anymore. Cable charging works. Had it since January.", N, F, "orbit"),
    ("Skylark receiver hanging by a cable", "The Skylark box on our wall has come off the bracket and is hanging by the cable over the front path where people walk. Internet still works but someone could get hurt.", U, F, "skylark prio"),
    ("ember no sound", "No sound from the Ember on any app since yesterday. TV sound works fine with other inputs.", N, F, "ember"),
    ("orbit go returning", "Bought an Orbit Go for my dad, delivered Tuesday, he refuses to use it. Still sealed. Return for refund please?", N, T, "orbit refund"),
    ("Beacon lights", "My ring light is solid white but Wi-Fi is slow in one room. Is the router broken?", L, F, "beacon halo"),
    ("halo duo refund - day 13", "I received a Halo Duo 13 days ago and it has not improved our Wi-Fi at all. I want to return it for a refund while I still can.", N, T, "halo refund"),
    ("Ember update", "How do I check if my Ember box has the latest software?", L, F, "ember"),
    ("Dog chewed Halo pod", "Our puppy got hold of one of the Halo pods and chewed the corner off. It still turns on but flickers. Can it be replaced?", N, F, "halo refund"),
    ("Skylark dish damaged", "A branch fell on the Skylark receiver during the night. The casing is split and there's no internet since.", H, F, "skylark prio"),
    ("orbit S mic", "People say they can't hear me on calls with my Orbit S unless I'm on speaker. Phone is 8 months old.", N, F, "orbit"),
    ("Ember remote buttons", "The volume buttons on the Ember remote don't control my TV. Is there a setting?", L, F, "ember"),
    ("Unhappy with Orbit Max - want refund", "I've had the Orbit Max for two months and the battery is rubbish. I want a full refund.", N, F, "orbit refund"),
    ("WPS button", "The WPS button on the back of the Beacon doesn't seem to do anything any more. The printer used to connect that way. Everything else works.", N, F, "beacon"),
    ("Halo Trio not delivered", "Halo Trio ordered 10 days ago, still not here. Can you chase it please?", N, F, "halo"),
    ("phone battery swelling", "The back of my Orbit S is lifting off, I think the battery is swelling. It's sitting on a plate on the windowsill right now. Please tell me what to do.", U, F, "orbit prio"),
    ("Returning Ember 4K (delivered 2 days ago)", "Hi, we received an Ember 4K two days ago as a gift for my dad but he already has one. Could we return it for a refund please? Unopened.", N, T, "ember refund"),
    ("How many Halo pods?", "Three-bed semi with a garage conversion. Would the Duo be enough or do I need the Trio?", L, F, "halo"),
    ("Router dead since storm", "Lightning storm last night and now the Beacon won't power on. No internet. Everything else in the house works.", H, F, "beacon prio"),
    ("Orbit max camera blurry", "The main camera on my Orbit Max takes blurry photos since about a month ago. Lens looks clean. Phone is 6 months old.", N, F, "orbit"),
    ("Ember box restarts", "Our Ember reboots randomly two or three times an evening. Had it about 8 months.", N, F, "ember"),
    ("Wrong Halo delivered", "I ordered the Trio and got a Duo. Delivered on Wednesday. I'd rather just return it and get a refund than wait for a swap.", N, T, "halo refund"),
    ("Beacon port broken", "One of the ethernet ports on the back of the Beacon has stopped working. The other three are fine.", N, F, "beacon"),
    ("Orbit refund - arrived 4 days ago", "The Orbit S arrived four days ago and the touchscreen doesn't respond in the bottom corner. I want to return it for a refund.", N, T, "orbit refund"),
]

INSTALLATIONS = [
    ("Technician didn't turn up", "I took the day off work for the installation today (morning slot) and nobody came. No call, no text. I want to know what happened and rebook.", N, T, "install refund"),
    ("Moving house in June", "We're moving from 22 Birch Road to 5 Millfield Close on 14 June. Can our Strand 500 move with us, and what do I need to do?", N, F, "install"),
    ("When will my fibre be live?", "Ordered Strand 150 last week. How long until it's actually working? I haven't heard anything since the order confirmation.", N, F, "install strand"),
    ("Cable left hanging across the drive", "Your technician left a black cable hanging at head height across our driveway yesterday. My husband nearly walked into it in the dark. Please send someone to fix it.", U, F, "install prio"),
    ("Reschedule appointment", "Hi, I've got an installation booked for Thursday afternoon but I'm now working that day. Could we move it to next week, any morning?", N, F, "install"),
    ("hole in my wall", "engineer drilled through to the outside and left a massive hole round the cable, you can see daylight through it. and plaster dust everywhere. not happy", N, F, "install prio"),
    ("What happens on installation day?", "Will the technician need to come inside, and how long does a Strand installation usually take? I need to know whether to book the full day off.", L, F, "install"),
    ("No show again", "Second time your engineer hasn't turned up. Afternoon slot, waited in until 6. No message at all. This is ridiculous.", N, T, "install refund"),
    ("Can you serve my new address?", "We're moving to a farm cottage near Tollby at the end of next month. Fibre isn't there. Can we keep Larkspur or do we have to leave?", N, F, "install skylark"),
    ("Exposed wires after install", "After yesterday's installation there are bare wires sticking out of the wall box in the hallway at toddler height. Is that supposed to be like that?", U, F, "install prio"),
    ("New Skylark install", "I've just ordered Skylark for our cottage. What day can someone come to put the receiver up?", N, F, "install skylark"),
    ("Move the Skylark receiver?", "We're having the house re-rendered and the Skylark receiver needs to come off the front wall. Can someone move it to the side wall?", N, F, "install skylark"),
    ("Installation cancelled at 7am", "Got a text at 7am this morning saying today's installation was cancelled. I'd already arranged childcare and taken the day off. Please rebook ASAP.", N, T, "install refund"),
    ("Lead time", "How long does it take to get Strand installed once you order? Moving into a new build in Harrow in about six weeks.", L, F, "install"),
    ("where is the engineer??", "my slot is 8-1 and it's 12:40. nobody here yet. are they coming or not", N, F, "install"),
    ("Technician was excellent", "Just a quick note to say Dan who installed our fibre on Tuesday was polite, tidy and explained everything. Please pass that on.", L, F, "prio"),
    ("Garage conversion", "We'd like the fibre point moved from the garage into the house now that the garage has been converted. Can you book someone for that?", N, F, "install"),
    ("Cable across the lawn", "The installer ran the fibre cable loose across our back lawn rather than burying or clipping it. It's a trip hazard for the kids but not across a path. Can someone come back and tidy it?", N, F, "install"),
    ("Missed install, credit?", "Your technician was a no-show on Monday, morning slot, no warning at all. Do I get anything for that? I lost half a day's pay.", N, T, "install refund"),
    ("Appointment confirmation", "I booked an installation on the phone but never got a confirmation text or email. Can you confirm it's definitely booked for the 19th?", N, F, "install"),
    ("move date changed", "Our move has been pushed back two weeks. The fibre at the new place was supposed to go live on the 3rd. Can you move it to the 17th?", N, F, "install"),
    ("Need earlier installation", "Is there any way to get an earlier install date? I start a work-from-home job in 5 days and the earliest you offered is in 12.", N, F, "install"),
    ("Engineer damaged my fence", "The engineer who installed our line on Friday knocked a panel out of our fence getting the ladder round. Who do I speak to about getting it repaired?", N, F, "install"),
    ("Move date", "Can you confirm the date my broadband moves to the new place? I said the 28th on the phone but the app says the 21st.", N, F, "install"),
    ("Gave 3 days notice to cancel visit", "I got a message on Monday saying Thursday's installation had been cancelled and rebooked for next week. That's fine but can I get the €30 thing for the hassle?", N, F, "install refund"),
    ("Can I choose the router position?", "When the technician comes, can I choose where the fibre box and router go? I'd prefer the living room, not the hallway.", L, F, "install"),
    ("Waited all day", "Booked the afternoon slot for the fibre connection, nobody came, nobody phoned. Found out when I called at 6.15 that the job had been 'rescheduled'. Not acceptable.", N, T, "install refund"),
    ("Book a technician", "My line was fixed remotely but the wall socket is loose and hanging off the skirting board by its screws. Can you book someone to refit it? Nothing is exposed, it's just wobbly.", N, F, "install"),
    ("When will the fibre reach my road?", "Do you have any idea when Strand will be available on Pennyfield Lane? I keep checking the checker.", L, F, "install"),
    ("Moving - new address in Dunmere", "Hello, I'm moving to Flat 3, 18 Market Street, Dunmere in four weeks. I'd like to take my broadband with me. Thanks.", N, F, "install"),
    ("Technician left rubbish", "Installer left bits of cable, clips and a plastic bag in our front garden. Bit sloppy.", N, F, "install prio"),
    ("Cable across pavement!", "There's a Larkspur cable lying loose across the pavement outside number 40 since your van was here this morning. Someone's going to trip over it. Please come and sort it now.", U, F, "install prio"),
    ("new connection not working after install", "The engineer finished the installation two hours ago, said it was all done, but the router light is still red. Was something missed?", N, F, "install"),
    ("Is the engineer still coming?", "Got a text at 12:50 saying my 8-1 appointment was being moved to another day. Bit late to tell me. Can I get compensation for that?", N, T, "install refund"),
    ("Moving in 10 days", "I know you ask for 30 days but I'm moving in 10. Is it still possible to get the broadband moved in time?", N, F, "install"),
    ("installation appointment times", "What are the installation time slots? I can only do mornings.", L, F, "install"),
    ("Skylark receiver position", "Before the install on Friday, can I ask for the Skylark receiver to go on the back of the house? The front is listed and we can't put anything there.", N, F, "install skylark"),
    ("Damaged water pipe", "Your installer drilled through a water pipe in the airing cupboard on Wednesday. We had to get a plumber out. Who pays for that?", N, F, "install"),
    ("Engineer no show - again!!!", "THIRD time nobody has turned up for my installation. Each time I've taken unpaid leave. I want this escalated and I want compensation.", N, T, "install refund"),
    ("Move broadband to new flat", "moving next month to the flat above my work (Quay St). same contract please. what do you need from me", N, F, "install"),
    ("Moving to a Skylark area", "We're moving to a village where only Skylark is available. Can our Strand plan be switched to Skylark as part of the move?", N, F, "install skylark"),
    ("Wire hanging from pole", "After your team's visit there's a cable hanging down from the telegraph pole to about knee height on the footpath. It's been like that since yesterday.", U, F, "install prio"),
    ("Installation feedback", "Installation went smoothly but the appointment text said 8-1 and he arrived at 7:45, before I was up! Not a complaint, just letting you know.", L, F, "prio"),
    ("Reschedule Friday visit", "Need to rebook my technician visit for Friday (afternoon). Anything next week works.", N, F, "install"),
    ("No access to comms cupboard", "I live in a block of flats and the installer said he couldn't get into the comms cupboard. What happens now? Do I need permission from the management company?", N, F, "install"),
    ("Builder needs to know", "Our builder wants to know what ducting the fibre needs for the new extension. Is there a spec sheet?", L, F, "install"),
    ("no-show, no call", "Appointment was yesterday 1-6pm. Nobody came and nobody called to say they wouldn't. Please rebook for a morning and tell me what compensation I get.", N, T, "install refund"),
    ("Still waiting for go-live", "Installation was done 9 days ago but the service still isn't live. The technician said it would be switched on within 24 hours.", N, F, "install"),
    ("Do I need to be home?", "For the Skylark installation, do I need to be home or can the installer fit the receiver outside without me?", L, F, "install skylark"),
    ("Scratched floor", "The technician dragged his toolbox across our new oak floor and left a long scratch. I'd like someone to contact me about this.", N, F, "install"),
    ("Tech missed appointment", "Booked 8-1 today. Got a call at 12.30 saying the tech was running late and wouldn't make it. That's a missed appointment in my book. Rebook + credit please.", N, T, "install refund"),
    ("moving next week", "moving next week to 12 Orchard Way, Carrow. need the internet working when we arrive if possible", N, F, "install"),
    ("Address not found", "I'm trying to order Strand but your website says my address doesn't exist. It's a new build, 7 Heron Court.", N, F, "install"),
    ("Hanging cable at the front", "Since your technician was here on Tuesday, the cable from the pole to our house has been hanging down over the front door. We have to duck to get in. Internet still works.", U, F, "install prio"),
    ("Engineer arrived outside slot", "The technician turned up at 7pm for a 1-6 slot. We'd gone out at 6:30 after waiting all afternoon. Now there's apparently a 'missed appointment' note on my account. That's not fair, he missed the slot.", N, T, "install refund"),
    ("changed my slot in the app", "I moved my installation from the 9th to the 16th in the app. Is that all I need to do, or should I ring as well?", L, F, "install"),
    ("Moving to the Kell Valley", "Is Larkspur available in the Kell Valley? We're buying a house there and want to keep our broadband.", L, F, "install"),
    ("Unhappy with where the box went", "The technician put the fibre box in the middle of the living room wall despite me asking for the corner. Can someone come back and move it?", N, F, "install"),
    ("Engineer never came, no internet", "Was supposed to have fibre installed yesterday at our new home. Nobody came, no explanation. We've got no internet at all in the new house.", N, T, "install refund prio"),
    ("Rebooking", "I missed my installation appointment yesterday because of a family emergency. Sorry. Can I rebook please?", N, F, "install"),
    ("How long for a house move?", "If we move, how long does the broadband take to get set up at the new place? Just planning at this stage.", L, F, "install"),
    ("Skylark receiver moved by installer wrongly", "The installer put the Skylark receiver on the north side even though your coverage map says the mast is south. Signal is poor. Can it be repositioned?", N, F, "install skylark"),
    ("Loose cable in the garden", "Since the installation a week ago there's a cable coiled up in the flower bed by the back door. It's not in anyone's way, I'd just like it tidied up.", N, F, "install"),
    ("Appointment tomorrow - details?", "What time will my technician arrive tomorrow? I have the morning slot but need to pop out for 20 minutes.", L, F, "install"),
    ("Complaint: no-show x2", "Dear Sir or Madam, I write to complain that your technician failed to attend two consecutive appointments (the 4th and the 11th) without notice. I expect the appropriate compensation and a firm date.", N, T, "install refund"),
    ("new tenant", "Just moved into a flat that already has your fibre box on the wall. How do I get it connected in my name?", N, F, "install"),
    ("Install on a Saturday?", "Do you do installations on Saturdays?", L, F, "install"),
    ("Cable split by a staple", "The cable your installer stapled along our fence on Monday has split where a staple went through it, and you can see the wires inside. We still have internet.", U, F, "install prio"),
    ("Installer rude", "The installer who came on Tuesday was rude to my elderly father and smoked in the house. I want to make a formal complaint.", N, F, "install"),
    ("Business moving premises", "When we move our broadband to the new address, does anything change with our Harbor static IP? Account HB-50210, the business is moving premises.", N, F, "install harbor"),
    ("Can't make my slot", "hi i can't make tomorrows installation, can we do friday instead? thanks", N, F, "install"),
    ("Skylark receiver installed crooked", "The receiver installed last week looks very crooked on the wall. Works fine, just looks awful from the street. Can it be straightened?", N, F, "install"),
    ("technician cancelled last minute", "The technician phoned 30 minutes before the slot to say he couldn't come. I'd been waiting in since 8. What's the compensation?", N, T, "install refund"),
    ("Leaving because of a move", "We're moving to a place you can't serve. Will I have to pay the early termination fee?", L, F, "install"),
    ("Pre-install survey?", "Does someone need to survey the house before a Skylark installation, or do they just turn up and fit it?", L, F, "install skylark"),
    ("Moving, new address unserviceable, refund?", "You've told me you can't serve my new address. I've already paid this month's bill in full. Do I get that money back since it's your coverage that's the problem, and will you still charge me to leave?", N, F, "install refund"),
]

MOBILE = [
    ("No signal at all", "Since this morning my phone shows no bars anywhere: at home, in town, at work. Can't call, text or use data. Tether plan. Restarted it twice.", H, F, "mobile prio"),
    ("Wander not working in Spain", "I'm in Málaga, Wander is switched on in the app and I got the welcome text, but mobile data just doesn't work. Calls are fine.", N, F, "wander mobile"),
    ("eSIM stuck", "Activated my eSIM four hours ago and it still says 'activating'. I'm a new Tether customer, my old network is still working on the physical SIM.", N, F, "mobile"),
    ("Porting my number", "I asked for my number to be moved over from Vantel on Tuesday. It's Friday and I'm still on a temporary Larkspur number. What's going on?", N, F, "mobile"),
    ("voicemail", "How do I set up voicemail? Never done it on this phone.", L, F, "mobile"),
    ("Weak signal indoors", "Signal is fine outside but drops to one bar or nothing inside the house. Calls break up in the kitchen. Tether, Orbit S.", N, F, "mobile prio"),
    ("Two days no mobile service", "My Tether SIM has had no service at all since Sunday morning. It's Tuesday. Tried another phone, same thing. I rely on this phone for work. Please fix and I expect something back for the days I've lost.", H, T, "mobile credit"),
    ("Kite not working", "my kite sim has had no signal since yesterday, i have €12 credit on it. cant call anyone. what is wrong", H, F, "mobile prio"),
    ("Which countries does Wander cover?", "Going to Canada and then Mexico next month. Will Wander work in both?", L, F, "wander"),
    ("Texts not sending", "Texts to some numbers won't send, they just say 'failed'. Calls and data are fine. Started a few days ago.", N, F, "mobile prio"),
    ("Dad can't call for help", "My father is housebound and his mobile is the only way he can call for help; he doesn't have a landline. His phone has had no signal since early this morning. Please treat this as urgent.", U, F, "assist mobile"),
    ("Data really slow", "Mobile data has been crawling for a week around Dunmere station. 4 bars of 5G but pages barely load.", N, F, "mobile prio"),
    ("How much data have I got left?", "Where can I see how much data I have left this month on my Tether plan?", L, F, "mobile"),
    ("Calls dropping", "Calls drop after about a minute, every single call, for the last three days. Data still works.", N, F, "mobile prio"),
    ("Mast down?", "Is there a mast problem in Ellerby? Nobody in our house has any mobile signal since about 2pm. All on Tether.", H, F, "mobile prio"),
    ("no service for 3 days - compensation?", "Three days now with no service on my Tether SIM, not a single bar, I've been using my neighbour's phone. Whatever credit I'm owed I want it.", H, T, "mobile credit"),
    ("Wander on, no signal in New York", "Landed at JFK 3 hours ago, Wander is on (zone 2 pass bought), but the phone shows 'no service'. Tried flight mode on/off.", N, F, "wander mobile"),
    ("Can I use my phone on a cruise?", "We're going on a Mediterranean cruise. Does Wander work on the ship?", L, F, "wander"),
    ("eSIM QR code", "Never received the eSIM QR code email. Ordered a Tether SIM-only plan yesterday.", N, F, "mobile"),
    ("Kite SIM no data", "Kite SIM, €20 top-up yesterday, calls and texts work but no mobile data at all. APN settings?", N, F, "mobile"),
    ("Wifi calling", "Does Larkspur support Wi-Fi calling? My signal at home is poor.", L, F, "mobile"),
    ("No service since the weekend - Tether", "Hi, my phone has been on 'No service' since Saturday lunchtime, it's now Monday evening. My partner's Larkspur phone works fine next to mine. Tether plan, account 8812-450.", H, T, "mobile credit"),
    ("Can't receive calls", "People ringing me go straight to voicemail even when I've got full signal. Outgoing calls work. Kite.", N, F, "mobile prio"),
    ("5G icon but nothing loads", "My phone shows 5G but nothing loads in the evenings in the town centre. Mornings are fine.", N, F, "mobile prio"),
    ("Keep my number when switching to Tether?", "I'm on Kite at the moment. If I move to a Tether plan, do I keep the same number?", L, F, "mobile"),
    ("Phone has no service, mum has medical alarm", "My mum's personal alarm uses her Larkspur mobile SIM to call the response centre. The SIM has had no signal since last night. She's 79 and lives alone.", U, F, "assist mobile prio"),
    ("roaming in Turkey", "going to Turkey in 2 weeks, is Wander available there?", L, F, "wander"),
    ("PAC/port code", "I've requested my number to be ported in from my old provider with the code they gave me. How long does it normally take?", L, F, "mobile"),
    ("Totally dead SIM", "SIM completely dead since this afternoon: no calls, no texts, no data, anywhere. Kite prepaid. I topped up only last week.", H, F, "mobile prio"),
    ("Signal in new house", "We've just moved and there's hardly any Larkspur signal at the new house, barely one bar upstairs. Was fine at the old address.", N, F, "mobile prio"),
    ("No internet on phone abroad", "I'm in Lisbon with Wander on. Data worked yesterday but today nothing loads. Calls and texts are fine.", N, F, "wander mobile"),
    ("Voicemail not notifying", "I don't get any notification when someone leaves a voicemail. Only find out days later when I dial 121.", N, F, "mobile"),
    ("Switch to eSIM", "I want to switch my physical Tether SIM to an eSIM. How do I do that?", L, F, "mobile"),
    ("hotspot not working", "Personal hotspot stopped working on my phone. Laptop connects but gets no internet. Phone data is fine.", N, F, "mobile"),
    ("Can't call 0800 numbers", "Calls to freephone 0800 numbers fail with 'call cannot be completed'. Everything else works.", N, F, "mobile"),
    ("Kite data allowance", "How much data does a €10 Kite top-up give me, and does unused data carry over?", L, F, "mobile"),
    ("No signal in whole town", "No mobile signal anywhere in Kellbridge since about 8am. My phone, my wife's, the neighbours'. All Larkspur.", H, F, "mobile prio"),
    ("International calls", "Can I call numbers in India from my Tether plan, and how much does it cost per minute?", L, F, "mobile"),
    ("Number port failed", "My port from Vantel failed, apparently because the account name doesn't match. Now I have no working number at all on either side. What do I do?", N, F, "mobile"),
    ("Phone says SIM not provisioned", "Just put my new Tether SIM in and it says 'SIM not provisioned'. Got it in the post this morning.", N, F, "mobile"),
    ("Zone 2 pass question", "If I'm in the US for 5 days but only use my phone on 3 of them, do I pay for 3 or 5 Wander days?", L, F, "wander"),
    ("Calls sound robotic", "On calls people sound robotic and cut out. Happens at home and at work. Data is fine.", N, F, "mobile prio"),
    ("No mobile service 30 hours, Tether", "My phone has had no service since 8am yesterday and it's now 2pm today. That's 30 hours with no way to make calls. I've tried a different handset. When will this be fixed?", H, T, "mobile credit"),
    ("MMS pictures", "Picture messages won't download. It just says 'downloading' forever.", N, F, "mobile"),
    ("Visual voicemail", "Does Larkspur have visual voicemail for Orbit phones?", L, F, "mobile"),
    ("eSIM on new phone", "I've got a new phone. How do I move my eSIM to it without losing service?", L, F, "mobile"),
    ("Kite out of signal for days", "Kite customer. No service for two days straight now and still nothing this morning. Is there any compensation for that?", H, F, "mobile credit"),
    ("Emergency calls only", "Phone says 'Emergency calls only' since I got to work this morning. Never happened before here. Can't make normal calls.", H, F, "mobile prio"),
    ("Thanks for the signal boost", "Noticed the signal in our village is much better since the new mast went up. Cheers.", L, F, "prio"),
    ("Roaming data in France", "Wander pass is bought for today in France but my phone says data roaming is blocked. Help please, I need maps.", N, F, "wander mobile"),
    ("Lost mobile data after update", "Since my phone updated last night I have no mobile data, just calls and texts. Tether, Orbit Max.", N, F, "mobile"),
    ("5G availability", "When will 5G be available in the Kell Valley?", L, F, "mobile"),
    ("Completely no service", "No service. Nothing. Since 6am. Tether. Sort it please, I'm a carer and people need to be able to reach me.", H, F, "mobile prio"),
    ("Port-in date", "I'd like to schedule my number port for next Monday rather than straight away. Is that possible?", L, F, "mobile"),
    ("Data cuts out on train", "Data drops out completely on the Carrow–Dunmere train line, for about 10 minutes in the middle. Is coverage being improved there?", N, F, "mobile"),
    ("Calls fail abroad", "I'm in Germany with Wander on. Data works but every outgoing call fails. Incoming works.", N, F, "wander mobile"),
    ("SIM swap to smaller size", "I need a nano SIM instead of the micro one I have. Can you post one?", L, F, "mobile"),
    ("Signal gone since mast work", "Your engineers were working on the mast by the school on Monday. Since then my signal at home has gone from 4 bars to none, though I can get calls if I go outside.", N, F, "mobile prio"),
    ("no network 26h, Tether", "hello, no network on my tether sim since yesterday 10am, its 12 now the next day. I need my phone for work, please help asap", H, T, "mobile credit"),
    ("Why can't I text abroad?", "In Italy with Wander. Can receive texts but can't send any.", N, F, "wander mobile"),
    ("Hearing aid compatibility", "Are Orbit phones compatible with hearing aids in telecoil mode? Asking for my grandfather before he chooses a Tether plan.", L, F, "orbit mobile"),
    ("Call forwarding", "How do I forward calls to my office landline when I'm on holiday?", L, F, "mobile"),
    ("No 4G/5G, only 3G", "My phone is stuck on 3G even in the town centre where I used to get 5G. Calls OK, data slow.", N, F, "mobile prio"),
    ("Whole family no signal", "None of our four Tether phones have any signal since this morning, at home or in town. We can't make any calls at all.", H, F, "mobile prio"),
    ("Kite SIM activation", "Bought a Kite SIM in the supermarket, topped up €10, but the SIM isn't activating. It's been about an hour.", N, F, "mobile"),
    ("Anyone?", "Phone's had no signal since Friday. Tether. It's Sunday. Nobody answers the phone line (obviously I'm ringing from a friend's).", H, T, "mobile credit"),
    ("Data in the US", "On a work trip in Chicago, zone 2 Wander is active and data is painfully slow, like 0.5 Mbps. Is that throttled?", N, F, "wander mobile"),
    ("Blocked numbers", "How do I block a number that keeps calling me? Is it something you can do on the network?", L, F, "mobile"),
    ("Signal at the hospital", "There's no Larkspur signal inside Carrow General where I work night shifts. Any plans to fix that?", N, F, "mobile"),
    ("eSIM activation failed twice", "My eSIM activation has failed twice now with 'unable to complete'. I've ported my number already, so I'm not getting any calls on my old SIM either.", N, F, "mobile"),
    ("carer with no phone", "I look after my wife who has seizures, and I need my phone to call an ambulance. It's had no service at all since 7 this morning. Please fix urgently.", U, F, "assist mobile"),
    ("Using data in Japan", "Is Japan in zone 1 or zone 2 for Wander?", L, F, "wander"),
    ("Can't make calls from home", "Calls from home fail about half the time with 'call failed'. Texts and data are fine. Started last week.", N, F, "mobile prio"),
    ("No service today", "my phone has had no service since this morning, not even emergency calls. tether.", H, F, "mobile prio"),
    ("Tether SIM dead for 2 days + I'm freelance", "Hello, my Tether SIM has been completely without service since Wednesday morning; today is Friday. As a freelancer I have certainly missed work calls. Please restore the service and confirm any credit due.", H, T, "mobile credit"),
]

ACCOUNTS = [
    ("Phone says No SIM", "My phone suddenly says 'No SIM' and I haven't touched it. Then I got an email saying my new SIM has been dispatched, which I never ordered. I think someone is trying to take over my number.", U, F, "security prio"),
    ("Can't log in", "I can't log in to the Larkspur app, it says my password is wrong but I haven't changed it. The reset email never arrives.", N, F, "security route"),
    ("Phone stolen", "My Orbit Max was stolen from my bag on the bus an hour ago. Please block the SIM and the phone.", U, F, "orbit security"),
    ("Weird text from 'Larkspur'", "Got a text saying my Larkspur bill payment failed and to update my card at a link. Looks dodgy. I didn't click. Just letting you know.", N, F, "security"),
    ("Cancel Sentinel", "I switched on Sentinel 10 days ago and it's blocking half the sites my kids need for school. Please cancel it and refund me.", N, T, "sentinel"),
    ("Orders I didn't make", "There are two Orbit Max orders on my account that I didn't place, and my email address on the account has been changed to one I don't recognise. I've been charged for the first instalments. Help!", U, T, "security refund"),
    ("Change email address", "Please update the email on my account to the new one I'm sending this from. The old one is closing.", L, F, "route"),
    ("My number has moved to another network", "My phone lost signal this morning and when I rang from work I was told my number has been ported to another provider. I did NOT ask for that.", U, F, "security prio"),
    ("Lost my phone", "Lost my phone at the football last night. Can you block the SIM so nobody can use it? Tether plan.", U, F, "orbit security"),
    ("Bereavement", "My husband passed away last month. The broadband and his phone are in his name. I'd like to take over the account. What do you need from me?", N, F, "route"),
    ("Clicked a link", "I clicked a link in a text that looked like it was from you and typed in my Larkspur password and the code you sent me. Then I realised it was a scam. What do I do now?", U, F, "security prio"),
    ("Sentinel blocking my bank", "Sentinel is blocking my bank's website and says it's a scam site. It's definitely my real bank. Please unblock.", N, F, "sentinel"),
    ("Parental controls", "How do I set a bedtime for my son's tablet with Sentinel? Want the internet off for it after 9pm.", L, F, "sentinel"),
    ("GDPR request", "Under data protection law I would like a copy of all personal data Larkspur holds about me, including call recordings.", N, F, "route"),
    ("Stop the marketing emails", "Please stop sending me marketing emails. I've clicked unsubscribe twice.", L, F, "route prio"),
    ("Someone logged in from abroad", "Got an alert that someone logged into my Larkspur account from Romania an hour ago. That wasn't me. I've never been to Romania.", U, F, "security prio"),
    ("Sentinel refund", "I've had Sentinel for about four months and never really used it. Can I cancel and get my money back for those months?", N, F, "sentinel"),
    ("Locked out", "locked out of my account after too many password attempts. how long before i can try again", N, F, "route"),
    ("Breach alert", "Sentinel sent me a breach alert saying my email was in a data leak from some shopping site. What should I do? Nobody has got into anything as far as I know.", L, F, "sentinel"),
    ("Add my son to the account", "I'd like to add my son as an authorised person so he can call you about the broadband on my behalf. How do I do that?", N, F, "route"),
    ("Kite top-ups I didn't make", "Somebody has been using my Larkspur app login to buy Kite top-ups for numbers I don't know. €90 so far today on my card. I've changed my password but I'm panicking.", U, T, "security refund"),
    ("Phishing call", "Someone rang claiming to be from Larkspur and asked for the code that had just been texted to me. I hung up without giving it. Thought you should know.", N, F, "security"),
    ("Change phone number on account", "New contact mobile for my account please: the old one is my work phone which I no longer have.", L, F, "route"),
    ("Two-factor", "Is there two-factor login for the Larkspur app? I'd like to turn it on.", L, F, "security"),
    ("Password reset link expired", "Every password reset link I get says 'expired' as soon as I click it. I've tried five times.", N, F, "route"),
    ("Sentinel cancel - week 2", "Please cancel Sentinel, I only turned it on last week and I'd like the charge back. It's slowed our gaming down a lot.", N, T, "sentinel"),
    ("Phone snatched", "Someone snatched my phone out of my hand in town 20 minutes ago. I'm on my friend's phone. Block everything please. Kite number.", U, F, "orbit security"),
    ("email changed on account", "I just got an email saying the email address on my Larkspur account has been changed. I didn't change anything!", U, F, "security prio"),
    ("Is this email from you?", "I got an email from 'Larkspur Rewards' saying I've won a free Orbit Max if I pay €2 postage. Is it genuine? Haven't done anything with it.", N, F, "security"),
    ("Account holder change - divorce", "My ex-husband and I have separated. The broadband is in his name but I'm staying in the house. Can the account be transferred to me? He agrees.", N, F, "route"),
    ("Sentinel settings don't save", "Every time I change the parental control schedule in Sentinel it reverts to the old one after a few hours.", N, F, "sentinel"),
    ("Gave my card details to a scammer", "Someone phoned saying they were from Larkspur and I'd be disconnected unless I paid an overdue bill. I paid €150 by card over the phone. Now I think it was a scam. My account shows nothing owed.", U, F, "security prio"),
    ("What is Sentinel?", "My neighbour mentioned Sentinel. What does it actually do and how much is it?", L, F, "sentinel"),
    ("Switch off Sentinel", "Please switch off Sentinel on our account. We've had it since last year and don't need it any more.", N, F, "sentinel"),
    ("Upgrade I didn't ask for", "I've just had a confirmation email for an upgrade to Strand 900 that I didn't order. I also see a login to my account from a device I don't own. Please stop this. I haven't been charged yet.", U, F, "security prio"),
    ("App login", "Setting up the app for the first time. Is the login my email address or my account number?", L, F, "route"),
    ("Dead relative's phone", "My late mother had a Kite phone. How do I close the number? I have the death certificate.", N, F, "route"),
    ("Sentinel blocking game", "sentinel keeps blocking a game my son plays (it's a normal one, Blocktown). whitelist?", N, F, "sentinel"),
    ("SIM swap?", "My phone lost all signal 30 minutes ago and now shows 'SOS only'. My partner's Larkspur phone next to me is fine. I got a text earlier about a 'SIM change request' that I didn't make.", U, F, "security prio"),
    ("Privacy", "Do you sell my browsing data to advertisers? Where can I read your privacy policy?", L, F, "route"),
    ("Strange login alert but it was me", "I got a new-login alert, but I think it was me on my new laptop. Is there a way to see a list of devices that are logged in?", L, F, "security"),
    ("Lost phone on holiday", "Lost my Orbit S in Barcelona yesterday (Tether). It might turn up at lost property but please block the SIM in the meantime.", U, F, "orbit security"),
    ("Sentinel charge after trial", "I thought Sentinel was free. I see €4 on my bill for it for the last three months. I switched it on in January. Can I have that back?", N, F, "sentinel"),
    ("can't get into account", "cant get into my account. it says account not found for my email. i have been a customer for 8 years", N, F, "route"),
    ("Account hacked, bills changed", "Someone got into my account, changed the payment card to theirs and the address, and ordered a Halo Trio to the new address. It was charged to my account last night.", U, T, "security refund"),
    ("Power of attorney", "I have lasting power of attorney for my father. How do I get it registered so I can manage his Larkspur account?", N, F, "route"),
    ("Text asking for PIN", "Got a text from a number saying 'Larkspur Security: reply with your account PIN to stop the suspicious login'. I didn't reply. Is it real?", N, F, "security"),
    ("Sentinel - turned on by mistake", "I think I turned on Sentinel by accident in the app three weeks ago. Please turn it off and refund what I've paid.", N, T, "sentinel"),
    ("Phone was stolen last night", "My daughter's phone (Orbit S, Tether, on my account) was stolen at a party last night. Please block it and send a new SIM.", U, F, "orbit security"),
    ("Account PIN", "How do I change my telephone account PIN?", L, F, "security"),
    ("Marketing texts", "I keep getting promo texts about upgrades. I opted out in the app but they still come. Please stop them.", L, F, "route"),
    ("Port-out I didn't request", "Received a text saying 'Your number transfer is complete'. I haven't requested any transfer! My phone now has no service.", U, F, "security prio"),
    ("Sentinel blocked a site wrongly", "Sentinel flags our school's homework portal as malware. It isn't. Can you sort it?", N, F, "sentinel"),
    ("Close my account", "Hi, my account is closed already but I still get login alerts and emails. Can my details be deleted completely?", N, F, "route"),
    ("Verify a call", "Someone called from 'Larkspur' offering a discount if I moved to a 36 month contract. They didn't ask for anything sensitive. Was that you?", L, F, "security"),
    ("Account takeover + charges", "I've been hacked. Someone changed my password, then added a Tether plan with an Orbit Max on my account. The first month's charge of €64 came out of my bank this morning. I want it reversed.", U, T, "security refund"),
    ("Sentinel - cancel and refund please", "Activated Sentinel 25 days ago as part of a promo. Decided it's not for us. Cancel and refund please.", N, T, "sentinel"),
    ("2FA codes not arriving", "The login verification codes aren't coming through to my phone. I can't get into my account.", N, F, "route security"),
    ("Can my wife speak for me?", "My wife handles our bills. Can she call you about my account without me being there?", L, F, "route"),
    ("Stolen bag with phone", "My handbag was stolen with my phone in it around lunchtime. Kite number. Please stop anyone using my credit.", U, F, "orbit security"),
    ("Dodgy email", "Forwarding you a weird email that says my router is 'infected' and to download a 'Larkspur cleaner'. I deleted it without opening the attachment.", N, F, "security"),
    ("Name spelled wrong", "My surname is spelled wrong on the account (Mcdonald instead of MacDonald). Can you correct it?", L, F, "route"),
    ("Sentinel: how to pause", "Is there a way to pause Sentinel for an hour without turning it off completely?", L, F, "sentinel"),
    ("Hacked - new email on account", "My account email and password have been changed and I can't get in. I got one text about it at 3am. I'm worried they'll order stuff.", U, F, "security prio"),
    ("Delete my data", "I left Larkspur two years ago. Please delete all my personal information.", N, F, "route"),
    ("Sentinel refund for 2 weeks", "I cancelled Sentinel in the app today after two weeks. Will I get refunded automatically?", N, T, "sentinel"),
    ("Gave the code", "A man who said he was from Larkspur called about 'upgrading my SIM'. He asked for the code sent to my phone and I read it out. Then my phone lost signal. Please help.", U, F, "security prio"),
    ("Too many login alerts", "I get a 'new login' email every time I open the app on my own phone. Can I turn those off?", L, F, "security"),
    ("account locked after holiday", "I haven't logged in for a year and now my account says it's locked for security. How do I unlock it?", N, F, "route"),
    ("Phone left in taxi", "Left my phone in a taxi last night. The taxi firm can't find it. Please block the SIM (Tether).", U, F, "orbit security"),
    ("Content filter too strict", "Sentinel's 'teen' filter blocks YouTube entirely. Is there a setting in between?", L, F, "sentinel"),
    ("Moving the account to my name", "I'm the son of the account holder, who has moved into a care home. He wants me to take over the broadband at his old house where I now live.", N, F, "route"),
    ("suspicious login email", "got an email saying new login from 'Windows PC in Carrow'. I don't have a windows pc. my password still works.", U, F, "security prio"),
    ("Phishing website", "There's a fake Larkspur login page going around, link in a WhatsApp message. I didn't enter anything. Thought your security team would want it.", N, F, "security"),
    ("Sentinel breach alert for old email", "Sentinel says an old email address of mine was in a leak. I haven't used it in years. Can I remove it from monitoring?", L, F, "sentinel"),
    ("Security question reset", "I can't remember the answer to my security question. How do I reset it?", N, F, "route"),
]

BILLING = [
    ("Charged twice", "I've been charged twice for this month's bill, €39 went out on the 8th and again on the 9th. Please refund one of them.", N, T, "refund billing"),
    ("Bill higher than my contract", "My contract says Strand 500 at €39 a month but this bill is €44. Nobody told me about a price rise. I want the difference back.", N, T, "refund strand"),
    ("Still being charged after cancelling", "I cancelled my Tether plan in March and got a confirmation email. It's May and you've taken another €25 this month. Refund it please.", N, T, "refund billing"),
    ("Top-up to wrong number", "I topped up €20 to the wrong Kite number by mistake (typo in the last digit). Can I get it back or moved to my number?", N, F, "refund mobile"),
    ("Roaming bill shock", "I've been charged €84 for data in Egypt. I had Wander switched on, I thought that covered me. This is outrageous.", N, F, "wander refund"),
    ("Charged per MB in France with Wander on", "I had the Wander pass active in France all last week (I got the daily €4 texts), but my bill also shows €37 of per-MB data charges for France. That's double charging.", N, T, "wander refund"),
    ("Early termination fee", "I left because I'm moving in with my partner who's with another provider, and you've charged me a €210 termination fee. That's a rip-off, I want it refunded.", N, F, "refund billing"),
    ("Change billing date", "Can I change the date my direct debit comes out to the 28th? I get paid at the end of the month.", L, F, "billing"),
    ("Service suspended", "My broadband has been cut off and the app says the account is suspended for non-payment. I didn't know the direct debit had failed. I've got money now, how do I pay and get it back on?", H, F, "billing prio"),
    ("What is this charge?", "What's the 'Equipment - EQR' line on my bill for €60?", L, F, "beacon billing"),
    ("Outage credit", "We were without broadband from Tuesday 6pm to Thursday 10am last week. It's fixed now. I haven't seen any credit yet on my account, will there be one?", N, T, "credit route"),
    ("Kite top-up taken twice", "Bought a €10 Kite top-up in the app and my bank shows two €10 payments but I only got €10 credit.", N, T, "refund mobile"),
    ("Upgrade to Strand 900", "I'd like to upgrade from Strand 150 to Strand 900. When does the new price start?", N, F, "billing strand"),
    ("Paper bill", "Why am I paying €1.50 a month for a paper bill? Can I switch to online?", L, F, "billing"),
    ("Refund for unused Kite credit", "I'm leaving Kite and have €26 credit left on my account. Please refund it to my card.", N, F, "refund mobile"),
    ("I returned the router!", "I left Larkspur in January and returned my router with the prepaid label the same week (I have the post office receipt). Now my final bill has a €60 unreturned equipment charge. Please remove it and refund me.", N, T, "beacon refund"),
    ("Cancel my broadband", "I'd like to cancel my Strand broadband. I'm out of contract. What's the notice period?", N, F, "billing"),
    ("Direct debit failed", "Got an email saying my payment failed. My bank says there was plenty of money. What happened and do I need to do anything?", N, F, "billing"),
    ("Late fee", "I've been charged a €10 late fee. I paid only a couple of days after the reminder. Please remove it.", N, F, "refund billing"),
    ("Credit for last week's outage?", "Our internet was down for about 6 hours last Tuesday. It's back now. Do we get any money back for that?", N, F, "credit route"),
    ("Update card details", "My bank card expires next month. How do I put the new card on my account?", L, F, "billing"),
    ("Overcharged on Tether", "I'm on the €20 Tether 30GB plan but this month's bill is €27.50. I didn't go over my allowance or roam. Please explain and refund.", N, T, "refund mobile"),
    ("Data overage", "I got charged €15 for going over my data allowance. I didn't even know that could happen. Can you refund it as a one-off?", N, F, "refund mobile"),
    ("Missed appointment fee", "I've been charged €40 because I 'wasn't home' for the technician. I was home all day! Nobody knocked.", N, F, "install refund"),
    ("Refund not received", "I returned my Halo Duo 9 days after delivery and your returns team confirmed they received it on the 2nd. It's the 20th and the €149 still hasn't come back to my card.", N, T, "halo refund"),
    ("Price of Strand 500?", "How much is Strand 500 per month these days?", L, F, "strand"),
    ("Downgrade and refund difference", "I've downgraded from Strand 900 to Strand 150 today. Can I have the difference for the rest of this month refunded?", N, F, "billing refund"),
    ("Double direct debit", "Two direct debits this month from Larkspur, both for €29. One should be refunded.", N, T, "refund billing"),
    ("Harbor credit for outage", "HB-20931. Our shop was without internet for 7 hours last Thursday before your technician fixed it. Please confirm the SLA credit on our next invoice.", N, T, "harbor credit route"),
    ("Why did my bill go up?", "My bill is €2 more than last month. Can you tell me why?", L, F, "billing"),
    ("Premium number charges", "There's €32 of calls to an 09 number on my bill. My son admits it was him (some competition). Can we get it refunded?", N, F, "refund mobile"),
    ("Invoice copy", "Can I get a VAT invoice for the last 12 months for my accountant? Account HB-44120.", L, F, "billing harbor"),
    ("Charged after I left", "I moved to another provider and my Larkspur account was closed on 30 April, confirmed by letter. You still took €49 on 8 May.", N, T, "refund billing"),
    ("Cancel my Tether contract", "Want to cancel my Tether contract. I have 5 months left. How much will it cost me?", N, F, "billing"),
    ("Wander charged on days I wasn't abroad", "My bill shows Wander zone 1 charges for 5 days but I was only in Ireland for 3. The other two days I was at home.", N, T, "wander refund"),
    ("No credit for 2 day outage", "The internet was off at our house for two whole days the week before last (Saturday and Sunday, fixed Monday morning). My new bill is the full €35. Where's my credit?", N, T, "credit refund"),
    ("Can I pay by bank transfer?", "Is it possible to pay my bill by bank transfer instead of direct debit?", L, F, "billing"),
    ("Goodwill gesture", "I've been a loyal customer for 9 years and the service has been a bit patchy lately. I think I deserve a month free.", N, F, "refund"),
    ("Wrong price after promotion", "I signed up with a promo of €29 for 24 months. After 12 months you've put me on €39. The contract clearly says 24.", N, T, "refund billing"),
    ("Paid my bill twice by accident", "I paid my bill by card in the app AND the direct debit also went out. So you've been paid twice. Can I have one back?", N, T, "refund billing"),
    ("Roaming charges in Morocco", "Why was I charged €46 for using data in Morocco? I had Wander on.", N, F, "wander refund"),
    ("Bill explanation", "What's the difference between 'usage' and 'plan' on my bill?", L, F, "billing"),
    ("Refund of Kite top-up", "I topped up €30 on Kite yesterday and then got a Tether contract today. Can I have the €30 back since I won't use it?", N, F, "refund mobile"),
    ("Unfair late fee", "The late fee was added because your system didn't take the direct debit, not because I didn't pay. My bank statement shows the money was there.", N, F, "refund billing"),
    ("Charged for a Halo I cancelled", "My bill has a line 'Halo Trio €199' but I never received a Halo Trio and the order was cancelled on the same day (I have the cancellation email).", N, T, "refund halo"),
    ("Want a cheaper plan", "Money's tight. Is there anything cheaper than Strand 150? Can I switch?", N, F, "billing strand"),
    ("Outage credit Skylark", "We had no Skylark connection for about 40 hours over the bank holiday. It came back on Tuesday. Please credit my account.", N, T, "skylark credit route"),
    ("Pro-rata on first bill", "My first bill is €58 for Strand 500. Is that right? I thought it was €39.", L, F, "billing strand"),
    ("Being chased for a bill I paid", "I keep getting reminder letters saying I owe €49, but I paid it on the 10th (bank reference attached). Please sort it.", N, F, "billing"),
    ("Overcharged for Orbit instalments", "The Orbit S instalment on my Tether bill is €14, but my agreement says €10.38. It's been like this for three months.", N, T, "refund orbit"),
    ("Charged roaming on a cruise", "I was charged €112 for data on a cruise ship. Please refund, I thought I was within Europe.", N, F, "wander refund"),
    ("Service suspended - paid now", "Paid my overdue balance this morning but the internet is still cut off. It's been suspended since Friday. Please reconnect.", H, F, "billing prio"),
    ("VAT number on invoice", "Could you add our company VAT number to our invoices from now on? HB-61234.", L, F, "billing harbor"),
    ("Still charged for old mobile line", "I cancelled one of the three Tether lines on my account last month (confirmation ref CX-22841). It's still on this month's bill at €15.", N, T, "refund billing"),
    ("Harbor outage, compensation", "Our office line (HB-10093) was completely down for a full working day on Monday. It's running again. What credit will be applied?", N, T, "harbor credit route"),
    ("Want to pay weekly", "Can I pay my broadband weekly instead of monthly?", L, F, "billing"),
    ("Refund for slow speeds", "My speed's been rubbish for months, maybe half what I pay for. I want a partial refund for the last three months.", N, F, "credit refund"),
    ("Overpayment", "My account shows a credit of €39 because I paid twice somehow. Can you refund it to my bank rather than leave it on the account?", N, T, "refund billing"),
    ("Why no outage credit?", "Internet was down for about 20 hours on Sunday into Monday. Fixed now. Why hasn't my bill got a credit?", N, F, "credit route"),
    ("Switch from Kite to Tether", "I'd like to switch my Kite SIM to a Tether monthly plan. How do I do that and what will it cost?", N, F, "billing mobile"),
    ("€40 fee for no-show? I was there", "Apparently I missed the technician on Saturday and there's a €40 fee on my bill. I was in all day with the doorbell on.", N, F, "install refund"),
    ("payment method", "can i pay with paypal", L, F, "billing"),
    ("Credit for planned maintenance?", "You switched our internet off for 6 hours overnight for maintenance (we got a text three days before). Is there a credit?", N, F, "credit"),
    ("Price rise letter", "Got a letter about a price change in April. Does it affect my contract? I signed up in November.", L, F, "billing"),
    ("Direct debit taken early", "The direct debit was taken on the 1st this month instead of the 8th and I went overdrawn. The amount was right. Can you make sure it's the 8th next time?", N, F, "billing"),
    ("Charged for Ember I sent back", "I returned the Ember 4K within a week of getting it and your team confirmed it arrived on the 5th. The €99 still hasn't been refunded.", N, T, "ember refund"),
    ("Loyalty discount?", "I've been with you 6 years, new customers get a better price than me. Can I have the new customer price?", N, F, "billing"),
    ("Outage credit request - 3 days", "Broadband was out Friday to Monday. Back on now. Please apply whatever credit I'm owed. Account 6620-341.", N, T, "credit route"),
    ("Kite: want top-up refunded", "Topped up €10 on Kite by mistake, I meant to top up my daughter's. I haven't used any of it. Refund please?", N, F, "refund mobile"),
    ("Annual price increase", "How much will my bill go up by with this year's price increase?", L, F, "billing"),
    ("Billed for Strand 900, I have 500", "My bills have said Strand 900 (€49) for three months but I'm on Strand 500 and my speed tests confirm it. I should be paying €39.", N, T, "refund strand"),
    ("Harbor outage 2 hours", "Our office connection (HB-30412) dropped for about two hours yesterday morning. Do we get the SLA credit?", N, F, "harbor credit route"),
    ("Final bill", "I've left Larkspur. When will I get my final bill and how is it worked out?", L, F, "billing"),
    ("Refund for Tether outage", "My Tether line had no service from Monday morning to Tuesday evening. It's fine now. Please credit my account for those days.", N, T, "credit mobile route"),
    ("Charged for a Wander day in zone 2", "I was charged €9 for a Wander day in the USA. Fine, but it was €4 last time I went. Has it gone up?", L, F, "wander"),
    ("Cancel within cooling off", "I signed up for Strand 150 online 5 days ago. I've changed my mind. The installation hasn't happened yet. How do I cancel?", N, F, "billing"),
    ("Duplicate invoice payment HB", "We paid invoice INV-88210 twice by bank transfer (once on the 3rd, once on the 5th). Account HB-23190. Please refund the duplicate.", N, T, "refund harbor"),
    ("bill wrong", "my bill says €64, should be €39. what is going on. no extras used", N, T, "refund billing"),
    ("Wander charges while on Wander", "Spent a week in Greece with the Wander pass on every day and I've been charged for the pass AND €2.50 per MB on three of the days. Please correct.", N, T, "wander refund"),
    ("Direct debit amount", "Could you tell me what my direct debit will be next month?", L, F, "billing"),
    ("Broadband and mobile bundle", "If I add a Tether SIM to my broadband account, is there a discount?", L, F, "billing mobile"),
    ("Installation fee refund", "I paid €50 for installation and the technician did it in 20 minutes. I think that's too much, can I have some back?", N, F, "refund"),
    ("Refund owed after cancelling Orbit order", "I cancelled my Orbit Max order before it was dispatched (confirmation email attached) but the full €429 was taken.", N, T, "refund orbit"),
    ("Change account from monthly to annual", "Can I pay for my Strand plan annually instead of monthly? Is there a discount?", L, F, "billing"),
    ("Unpaid balance - help", "I lost my job and can't pay this month's bill. Is there a payment plan so I don't get cut off?", N, F, "billing"),
    ("internet back, want credit", "The fibre was down from Wednesday 2pm until Friday morning. All working now but I want the credit for those days.", N, T, "credit route"),
    ("Charged for a month I was cut off", "You suspended my service for 10 days in March for non-payment. I've paid now but I'm being charged the full month for March. That's not fair.", N, F, "billing refund"),
]

# Second batch of hand-written tickets (longer messages, more money cases).
NETWORK += [
    ("Complaint - no broadband since Thursday", "I am writing to complain in the strongest terms. Our broadband stopped working on Thursday afternoon and it is now Saturday evening. I have called three times and been told each time that an engineer will call me back, and nobody has. My partner and I both work from home and we have had to sit in a café to do our jobs. I would like a date for the repair and I expect to be compensated.", H, T, "credit strand prio"),
    ("still down", "Still no internet. Reported it yesterday at 8am, it's 11am now. Skylark, Upper Fenwick. Ref 77120.", H, T, "skylark credit"),
    ("HB-70215 down since 7am", "Morning, our print shop's line has been completely dead since 7am. It's now 12:30. We have jobs queued for customers and can't receive files. Your SLA says four hours. Please escalate this and confirm the credit.", U, T, "harbor credit prio"),
    ("Internet outage - 2nd day", "hi there so the internet went off on tuesday night around 10 and its still off now which is thursday morning. I've done the restart thing about 20 times lol. my daughter has her online uni lectures and is missing them. can somebody please look at it", H, T, "credit strand"),
    ("Nursery has no internet", "Little Acorns Nursery, account HB-31877. The whole building has been offline since 6:45 this morning. It's gone 1pm. Our sign-in system, parent messaging and CCTV all run over it. We really need someone today.", U, T, "harbor credit prio"),
    ("Off since Monday", "Our broadband has been off since Monday morning. It is Wednesday. Please fix it.", H, T, "credit"),
    ("Skylark not working for 3 days", "Our Skylark connection has not worked at all for three days. The receiver outside has its light on and I have moved nothing. We live a long way from town and the internet is how we do our shopping and banking. Please send someone or tell us what is wrong.", H, T, "skylark credit"),
    ("Harbor - still down after 5 hours", "HB-48800. Down since 10am, now 3:15pm. We've had one text saying a technician is 'assigned'. Where are they?", U, T, "harbor credit"),
    ("internet keeps going off and on", "This has been going on for a while and it's getting worse. The internet will be fine for an hour, then it goes off for a few minutes, then comes back. My husband's work calls keep dropping and he is getting grief from his manager. We have restarted the router loads of times and even moved it. Nothing helps.", N, F, "strand prio"),
    ("Broadband down since the weekend - Priority Assist", "My father is on your Priority Assist register because his heart monitor uses the broadband. His line has been dead since Saturday night and it is now Monday. I have rung twice. This needs fixing today.", U, T, "assist credit prio"),
    ("No internet 36 hours", "No internet for 36 hours now. Strand 500. Same red light on the router the whole time. Reference number from the first call is 55902.", H, T, "credit beacon"),
    ("Accountant's office offline HB-90412", "Good afternoon. Our office fibre went down at 8:50 this morning. It is now 2pm and there is no sign of a technician. We are in the middle of tax season and our staff cannot access client files. Please treat this as the emergency it is and apply whatever SLA credit is due.", U, T, "harbor credit"),
    ("Still nothing after 2 days", "It's been 2 days without any internet and I'm losing patience. Account 4410-872.", H, T, "credit"),
]

HARDWARE += [
    ("Return Halo Trio - arrived Monday", "Hello, my Halo Trio arrived on Monday. Unfortunately our landlord won't let us put the pods where they need to go, so we can't really use it. It's all back in the box with the cables. Could you send me a returns label and refund me please? Order LK-611093.", N, T, "halo refund"),
    ("ember 4k keeps losing wifi", "got the ember 4k last week (delivered thursday). it keeps losing wifi every few mins even though my phone right next to it is fine. honestly would rather send it back and get the money than mess about with it", N, T, "ember refund"),
    ("Orbit S - wrong colour and I want to return it", "The Orbit S I received five days ago is the grey one, not the blue I ordered. I've decided I'd rather return it entirely and get a refund.", N, T, "orbit refund"),
    ("halo pods disconnect, 1 week old", "Halo Duo delivered a week ago. The second pod disconnects every evening. I've tried moving it. Please refund, I'll send it back.", N, T, "halo refund"),
    ("Orbit Max overheating during calls", "My Orbit Max arrived on the 2nd and it's the 9th today. It gets very warm during calls, not dangerously hot but noticeably warm, and the battery drains fast. I'd like to return it for a refund rather than a repair.", N, T, "orbit refund"),
    ("Ember HD return", "Please can I return the Ember HD I bought? It arrived 12 days ago. It works but the picture isn't as good as I hoped on our older TV. Thanks, Margaret", N, T, "ember refund"),
    ("Faulty phone after 3 weeks", "My new Orbit S keeps freezing and I have to hold the power button to restart it. I've had it three weeks. I want a refund, not a repair.", N, F, "orbit refund"),
    ("Sending back the Halo", "Halo Duo, delivered 6 days ago, never opened. We bought the wrong thing, we needed a longer cable not mesh. Refund please.", N, T, "halo refund"),
    ("orbit go - dad doesn't like it", "Bought my dad an Orbit Go 10 days ago, he says the buttons are too small. Can I return it? It's barely been used and has all the packaging.", N, T, "orbit refund"),
    ("Ember 4K dead on arrival", "The Ember 4K came yesterday and won't turn on at all. No light on the front. Different socket, different HDMI port. I'd like my money back please.", N, T, "ember refund"),
    ("Halo trio - returning within 14 days", "Hi team, I'm writing to return my Halo Trio, which was delivered on the 4th (today is the 15th). The pods work, but the Larkspur app keeps asking for permissions I'm not comfortable giving, so I'd prefer a refund. Let me know how to send it back.", N, T, "halo refund"),
    ("Replacement remote for Ember?", "My dog ate the Ember remote. How much is a new one and how do I order it?", N, F, "ember"),
    ("Orbit Max return - day 3", "Day 3 with the Orbit Max and I already know it's too big for me. Can I swap it for a refund? No scratches, still has the film on the screen.", N, T, "orbit refund"),
    ("Skylark receiver making buzzing noise", "The Skylark receiver on the wall has started buzzing quite loudly, especially at night. Internet still fine. Can it be swapped?", N, F, "skylark"),
    ("Beacon returned? refund of router fee", "I took my own router instead and sent the Beacon back unopened the week it arrived. Is there a refund for the router cost?", N, F, "beacon refund"),
    ("Halo pod rattles", "One of the Halo pods that arrived on Saturday rattles when you pick it up and won't switch on. Please take the whole kit back and refund me.", N, T, "halo refund"),
]

INSTALLATIONS += [
    ("No-show today", "Nobody turned up for my installation this morning. I was in from 7:30. Please rebook.", N, T, "install refund"),
    ("Technician never arrived (afternoon slot)", "Hello. I had a technician booked for the afternoon slot yesterday to connect my new Strand line. I waited in the whole afternoon and nobody arrived and nobody rang. When I called this morning the agent couldn't tell me why. I would like a new appointment as soon as possible, and I understand there's some compensation for this.", N, T, "install refund"),
    ("missed appt", "ur tech missed my appt on fri. no call. rebook plz + whatever credit", N, T, "install refund"),
    ("Second missed visit for Skylark", "This is the second time your installer hasn't turned up to fit our Skylark receiver. Both times I took a day off. No messages either time. We live 40 minutes from town so this is a real nuisance.", N, T, "install refund skylark"),
    ("Engineer cancelled the morning of", "Your engineer texted at 8:15 this morning to cancel today's 8-1 installation. I'd taken the day off. I want a new date and whatever compensation you give.", N, T, "install refund"),
    ("Waited in for nothing", "I waited in all day Saturday for the engineer to finish the connection they started last week. Nobody came. I phoned and was told there was 'no appointment on the system', but I have the confirmation text right here.", N, T, "install refund"),
    ("Installation - is it done?", "The installer left after an hour saying there was a blockage in the duct and someone else would come. That was eight days ago and nobody has been in touch. What's the next step?", N, F, "install"),
    ("No-show + no apology", "Booked technician didn't come on Wednesday. No text, no call. Rebook please and I'll expect the €30 credit.", N, T, "install refund"),
    ("Move booked but nothing happened", "We moved into our new house on Friday. The broadband was booked to move with us the same day and a technician was meant to come in the morning. Nobody came and we've been without internet since. What happened?", N, T, "install refund"),
    ("Office move", "Our company (HB-12077) is moving to Unit 4, Quayside Business Park in six weeks. Can we book the Harbor line move now so there's no downtime?", N, F, "install harbor"),
    ("tech didnt show", "tech didnt show up tues. took unpaid day off. rebook for a saturday if you can", N, T, "install refund"),
    ("Is there a charge to move the socket?", "Before I book: is there a charge to have the fibre socket moved to another room?", L, F, "install"),
    ("Rescheduled without notice", "I arrived home at noon for my 1-6 installation slot and found a text from 11:40 saying the job had been rescheduled to next week. That isn't enough notice.", N, T, "install refund"),
]

MOBILE += [
    ("Tether no signal since Tuesday", "Hi, my Tether phone has had no signal whatsoever since Tuesday lunchtime (it's Thursday). I've tried it in my husband's phone too and no luck, so it's not the handset. Nobody can reach me. Please fix.", H, T, "mobile credit prio"),
    ("My phone is useless", "Phone has been showing No Service for over a day now. Tether contract, paying €30 a month for nothing. I've restarted, I've reseated the SIM, I've reset network settings. Nothing. I want it fixed and I want the days back.", H, T, "mobile credit"),
    ("No calls or data for 2 days (Tether)", "Dear Sir/Madam, my mobile phone has been without any service for two days. My contract is a Tether plan. I have tested the SIM in another phone and the result is the same. Could you please investigate and advise?", H, T, "mobile credit"),
    ("kite no service 36h", "my kite sim has no service for 36 hours now. I want money back for the credit I couldnt use", H, F, "mobile credit refund"),
    ("signal gone since yesterday morning", "Since yesterday at about 9am I've had no signal at all on my Tether SIM, anywhere. It's 2pm today. Work keeps emailing asking why I'm not answering.", H, T, "mobile credit"),
    ("Wander question before trip", "Heading to Norway for a week. Norway is in Europe but not the EU, does Wander zone 1 cover it?", L, F, "wander"),
    ("Can't use Wander in Thailand", "I'm in Bangkok and the app won't let me switch Wander on. Is it broken? I need data.", N, F, "wander mobile"),
    ("no signal at all since Sat", "no signal since saturday am. tether. monday now. rang twice. nothing.", H, T, "mobile credit"),
    ("Calls keep failing at work", "I work in a basement office and calls fail about half the time. Data is OK over Wi-Fi. Anything that can be done, like Wi-Fi calling?", N, F, "mobile prio"),
]

ACCOUNTS += [
    ("Sentinel - please cancel and refund", "Hello, I added Sentinel to our broadband twelve days ago because of a leaflet, but it keeps blocking my work's remote desktop site. I'd like to cancel and get refunded for it. Thank you.", N, T, "sentinel"),
    ("Someone ordered a phone on my account", "I just got an email confirming an Orbit Max on a new Tether plan, delivering to an address in Dunmere I've never lived at. I didn't do this. The first payment of €38 has already been taken from my account. I've changed my password. Please cancel it and refund me.", U, T, "security refund"),
    ("sentinel cancel", "cancel sentinel please, turned it on 3 days ago, dont want it. refund", N, T, "sentinel"),
    ("Hacker bought top-ups", "My account was logged into from somewhere I don't recognise last night and three €30 Kite top-ups were bought with my saved card for numbers I don't know. Please block this and refund the €90.", U, T, "security refund"),
    ("Sentinel - first month", "We've had Sentinel for just under a month (switched it on the 3rd, today's the 28th). It hasn't been useful. Please cancel and refund what we've paid.", N, T, "sentinel"),
    ("Account compromised", "My Larkspur password was changed without me knowing and someone upgraded my broadband to Strand 900. My bill now shows €49 instead of €29 and I've already paid it. I want the account secured and the difference back.", U, T, "security refund"),
    ("Sentinel trial", "My Sentinel has been on for a fortnight. If I cancel now do I get back the €4 I paid?", N, T, "sentinel"),
    ("Lost phone - please freeze", "I've lost my phone somewhere between the station and home. Please freeze the SIM until I find it or get a new one. Tether account 6015-213.", U, F, "orbit security"),
    ("password changed, not by me", "Got a text saying my account password was changed 10 minutes ago. Wasn't me!! Please lock it down.", U, F, "security prio"),
    ("Sentinel blocked my work VPN", "Since Sentinel was switched on (by my husband, last year) my work VPN won't connect. Can you whitelist it or tell me how to?", N, F, "sentinel"),
    ("What is this Sentinel charge?", "Hello, I'd like to know why I'm paying €4 a month for something called Sentinel. It's been on my bills since spring and I don't remember adding it.", N, F, "sentinel"),
    ("Unknown tablet on my bill", "There's a new Tether data SIM and a tablet instalment on my account that I never ordered. I didn't get any confirmation emails, and when I checked, my account email had been changed. I've been charged €22 for it already.", U, T, "security refund"),
]

BILLING += [
    ("Refund for duplicate payment please", "Hi, I noticed on my bank statement that Larkspur took my broadband payment twice this month, €35 on the 8th and €35 on the 11th. I've checked and there's only one bill. Please could you refund the second payment as soon as possible as it has left me short. Thanks.", N, T, "refund billing"),
    ("You charged me after I cancelled", "I gave notice and my Strand contract ended on 31 July. You took a full month's payment on 8 August. Please refund it.", N, T, "refund billing"),
    ("Outage credit for last month", "Last month our internet was down from the Monday afternoon to the Wednesday evening. It's been fine since, but my new bill is the normal amount with no credit. Please apply it.", N, T, "credit route"),
    ("Double top-up charge", "I bought one €20 Kite top-up in the shop on the card machine and my bank has taken €20 twice. Receipt shows one transaction.", N, T, "refund mobile"),
    ("Price doesn't match my contract", "My contract says €29 per month for Strand 150, fixed for 24 months. I'm in month 14 and my last three bills have been €33. I haven't agreed to any change. Please correct it and refund the extra €12.", N, T, "refund strand"),
    ("Per-MB charges in Portugal", "I was in Portugal for 4 days with Wander switched on and paid the €4 each day, but I've also been charged €19.80 for 'roaming data' on the same days. Surely that's wrong?", N, T, "wander refund"),
    ("Harbor SLA credit not applied", "HB-40277. We had a total outage from 6pm to 1am on the 14th (7 hours) during dinner service. The invoice that arrived today shows no SLA credit. Please reissue it with the credit.", N, T, "harbor credit route"),
    ("Unreturned router charge - I sent it back", "I've got a €60 charge for not returning the Beacon. I posted it back with your label on the 2nd and the tracking says it was delivered to your returns centre on the 4th. Please remove the charge.", N, T, "beacon refund"),
    ("Still waiting for Orbit refund", "I returned my Orbit Max eight days after it was delivered, and your returns team emailed on the 12th to confirm it was received in good condition. Three weeks later there's still no refund on my card.", N, T, "orbit refund"),
    ("wrong amount taken", "you took €58 this month instead of my normal €29. i havent changed anything or used anything extra. please give me the extra back", N, T, "refund billing"),
    ("Cancelled line still billed", "We cancelled our second Tether line in June and have the confirmation email. It's still on the August bill. Please remove it and refund July and August.", N, T, "refund billing"),
    ("Outage compensation - Skylark", "Skylark was down from Friday evening to Sunday afternoon. It's working now. Please credit those days to my account.", N, T, "skylark credit route"),
    ("Paid twice", "paid my bill by card on the app then saw the direct debit had already gone. can i get one refunded pls", N, T, "refund billing"),
    ("Tether outage credit", "Between Thursday night and Saturday morning my Tether SIM was completely dead: no calls, no texts, no data. Working again since. I'd like the outage credit applied to my next bill, please.", N, T, "mobile credit route"),
    ("Overcharge on Harbor invoice", "Our Harbor contract (HB-61234) is €89 a month. The last two invoices are €109. We haven't added any services. Please credit the difference.", N, T, "refund harbor"),
    ("charged for halo I returned", "Sent back the Halo Duo within a week, you confirmed receipt on the 19th. Still waiting for the €149 back. It's been over two weeks.", N, T, "halo refund"),
    ("Charged twice for Ember", "Ordered one Ember 4K, my card was charged €99 twice. Only one box arrived. Please refund the duplicate.", N, T, "refund ember"),
    ("Credit for outage over 24h", "Our internet was off for a full day and a half earlier this month. It's sorted now, but I'd like to confirm I'll receive the credit on my next bill.", N, T, "credit route"),
    ("Bill after account closed", "My mum's account was closed in May after she passed away, and we received a closure letter. A direct debit of €39 was still taken in June. Please refund it to her estate.", N, T, "refund billing"),
    ("Upgrade charged but not applied", "I upgraded to Strand 900 and I'm being billed €49 since March, but my line is still on 150. Speed tests show 140ish. I'd like refunded the difference for the months I didn't get it.", N, T, "refund strand"),
    ("Wander in Spain, charged per MB", "Wander was on the whole time I was in Spain (I have the texts confirming each day). Why is there a €27 data roaming charge for Spain on my bill? Please remove it.", N, T, "wander refund"),
    ("Roaming in Dubai", "I've got a €63 charge for data in Dubai. I had the Wander pass switched on. Please refund, I thought it covered everywhere.", N, F, "wander refund"),
    ("Kite top-up refund - sent to my old number", "I accidentally topped up my old Kite number that I no longer use. €30. Can you move it or refund it?", N, F, "refund mobile"),
    ("Credit for 2-hour outage", "We lost broadband for about two hours on Saturday morning. It came back by itself. Can I have a credit?", N, F, "credit route"),
    ("Why was I charged for Wander on a flight?", "There's a €17 charge from when my phone connected on a flight to New York. Wander was on. Can you take it off?", N, F, "wander refund"),
    ("Charged for plan I downgraded from", "I downgraded from Strand 500 to Strand 150 two bills ago. Both bills since have still charged me the Strand 500 price.", N, T, "refund strand billing"),
    ("Billing question - ETF", "How much would it cost to leave my Tether contract early? 9 months left on a €25 plan.", L, F, "billing"),
    ("Outage Harbor 3 hours - credit?", "HB-55102: our line was down 3 hours on Tuesday. Fixed now. Is there a credit for that under the SLA?", N, F, "harbor credit route"),
]


# --------------------------------------------------------------------------------------
# Build: label, split (stratified, seeded), write.
# --------------------------------------------------------------------------------------
SEED = 20240611
TEST_TARGET = 140  # about a quarter of all tickets

BLOCKS = [
    ("network", NETWORK),
    ("hardware", HARDWARE),
    ("installations", INSTALLATIONS),
    ("mobile", MOBILE),
    ("accounts", ACCOUNTS),
    ("billing", BILLING),
]


def all_tickets() -> list[dict]:
    tickets = []
    for team, rows in BLOCKS:
        for subject, body, priority, refund, docs in rows:
            doc_ids = []
            for alias in docs.split():
                doc_id = DOC[alias]
                if doc_id not in doc_ids:
                    doc_ids.append(doc_id)
            tickets.append({
                "input": {"subject": subject, "body": body},
                "expected": {"team": team, "priority": priority, "refund_eligible": refund},
                "expected_doc_ids": doc_ids[:3],
            })
    return tickets


def split(tickets: list[dict]) -> tuple[list[dict], list[dict]]:
    """Stratified by (team, priority, refund_eligible); largest-remainder rounding to TEST_TARGET."""
    rng = random.Random(SEED)
    strata: dict[tuple, list[dict]] = {}
    for t in tickets:
        e = t["expected"]
        strata.setdefault((e["team"], e["priority"], e["refund_eligible"]), []).append(t)
    frac = TEST_TARGET / len(tickets)
    keys = sorted(strata, key=lambda k: (k[0], k[1], str(k[2])))
    quota = {k: int(len(strata[k]) * frac) for k in keys}
    rest = TEST_TARGET - sum(quota.values())
    by_remainder = sorted(keys, key=lambda k: (-(len(strata[k]) * frac - quota[k]), keys.index(k)))
    for k in by_remainder[:rest]:
        quota[k] += 1
    test, train = [], []
    for k in keys:
        rows = list(strata[k])
        rng.shuffle(rows)
        test += rows[: quota[k]]
        train += rows[quota[k]:]
    rng.shuffle(test)
    rng.shuffle(train)
    return test, train


def write_jsonl(path: Path, prefix: str, rows: list[dict], with_docs: bool) -> None:
    lines = []
    for i, t in enumerate(rows, 1):
        obj = {"id": f"{prefix}-{i:04d}", "input": t["input"], "expected": t["expected"]}
        if with_docs:
            obj["expected_doc_ids"] = t["expected_doc_ids"]
        lines.append(json.dumps(obj, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def dist_table(test: list[dict], train: list[dict]) -> str:
    out = []
    for field, values in (("team", TEAMS), ("priority", PRIORITIES), ("refund_eligible", [True, False])):
        out.append(f"| {field} | test | train |")
        out.append("|---|---|---|")
        for v in values:
            a = sum(1 for t in test if t["expected"][field] == v)
            b = sum(1 for t in train if t["expected"][field] == v)
            label = str(v).lower() if isinstance(v, bool) else v
            out.append(f"| {label} | {a} | {b} |")
        out.append("")
    return "\n".join(out)


README = """# support-triage: Larkspur Telecom ticket triage (demo eval set)

## The story
**Larkspur Telecom** is a fictional mid-sized provider of home fibre, rural 5G home internet, business
fibre and mobile plans. Its support inbox gets a few thousand emails a day, and before a human reads
one, a triage model must decide three things:

- **team**: which of six queues owns the ticket: `network` (broadband service), `hardware` (devices
  we sold or loaned), `installations` (new connections, moves, technician visits), `mobile` (mobile
  service), `accounts` (logins, security, fraud, lost phones, the Sentinel add-on) or `billing`
  (every other money matter).
- **priority**: `urgent`, `high`, `normal` or `low`.
- **refund_eligible**: `true` when Larkspur's own rules give the customer money back (a refund or
  a credit) for what the ticket describes, whether or not they ask; otherwise `false`.

The team wants to know whether a fine-tuned small model beats a prompted one, and whether retrieval
over the knowledge base in `docs/` closes the gap.

## Why the docs matter
Customers write in Larkspur's product names, which the instructions in `task.yaml` do not explain.
The answers follow from the knowledge base (`docs/`, {n_docs} pages):

- **Products → team**: Halo (mesh Wi-Fi kit), Ember (TV box), Orbit (phones), Beacon (router) and the
  Skylark receiver are `hardware`; Strand, Skylark and Harbor service is `network`; Tether and Kite are
  `mobile`; Sentinel is `accounts` (`team-routing`, product pages). Precedence rules settle mixed
  tickets: security before devices, a still-down outage to `network` but a credit request after the
  fix to `billing`, a chased refund for a received return to `billing`, the missed-appointment fee to
  `billing`.
- **Priority** (`priority-guidelines`): fraud, stolen phones, acted-on phishing, safety hazards,
  Priority Assist customers without service and any total outage on a **Harbor** business line
  (account numbers `HB-...`, explained only in `plan-harbor-business`) are `urgent`; total loss of home
  or mobile service is `high`; degraded service and requests are `normal`; questions and preferences
  are `low`.
- **refund_eligible** (`refund-policy`, `outage-credits`, `addon-sentinel`, `installations-and-moves`,
  `roaming-wander-pass`): purchased devices (Halo, Ember, Orbit) within 14 days of delivery, never the
  loaned Beacon or Skylark receiver; billing errors (duplicates, wrong price, charges after
  cancellation, per-MB charges inside a Wander zone, charges made by an account hijacker); outage
  credits after 24 hours on home and Tether plans but after 4 hours on Harbor, never on Kite; a €30
  credit for a technician no-show; Sentinel cancelled within 30 days. Never for Kite top-ups, roaming
  outside Wander zones, early termination or late fees, accidental damage or goodwill requests.

Some docs are plausible but decide nothing (`about-larkspur`, `network-upgrade-roadmap`,
`community-forum-guidelines`, `device-recycling`): distractors for retrieval.

Every test item has `expected_doc_ids` (1-3 pages whose facts decide its labels), for retrieval
metrics. Train items carry them too.

## Files
- `task.yaml`: description, instructions (short enough for a 270M model), input template
  (`Subject: {{subject}}` + body) and the JSON output schema.
- `test.jsonl`: {n_test} held-out items. `train.jsonl`: {n_train} items (few-shot pool and
  fine-tuning data). One JSON object per line: `id`, `input` (`subject`, `body`), `expected`,
  `expected_doc_ids`.
- `docs/*.md`: the knowledge base; the file stem is the doc id.

## Label distribution
{dist}
## How it was made
Every ticket, document and name here is original and fictional, written by hand for this project;
no public dataset was used. Any resemblance to real companies or people is accidental. Tickets are
written in varied lengths, tones and styles (terse, angry, rambling, formal, with the odd typo).
`tools/make_demo_evalset.py` holds the hand-written tickets with their labels, splits them
(stratified by team, priority and refund flag, fixed seed, so re-running it gives identical files)
and runs a checker: counts, unique ids, labels valid under the schema, doc ids that exist, label
balance, and no exact or near-duplicate message text between test and train.
"""


def build() -> None:
    tickets = all_tickets()
    test, train = split(tickets)
    write_jsonl(OUT / "test.jsonl", "test", test, with_docs=True)
    write_jsonl(OUT / "train.jsonl", "train", train, with_docs=True)
    n_docs = len(list((OUT / "docs").glob("*.md")))
    (OUT / "README.md").write_text(
        README.format(n_docs=n_docs, n_test=len(test), n_train=len(train), dist=dist_table(test, train)),
        encoding="utf-8",
    )
    print(f"wrote {len(test)} test + {len(train)} train items to {OUT.relative_to(ROOT)}")


# --------------------------------------------------------------------------------------
# Checker (stdlib + pyyaml if present).
# --------------------------------------------------------------------------------------
def normalise(text: str) -> str:
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def load_schema() -> dict:
    raw = (OUT / "task.yaml").read_text(encoding="utf-8")
    try:
        import yaml  # type: ignore
    except ImportError:  # pragma: no cover - fallback keeps the checker stdlib-only
        return {"_raw": raw}
    return yaml.safe_load(raw)


def check() -> int:
    problems: list[str] = []
    task = load_schema()
    if "_raw" in task:
        print("note: pyyaml not installed, schema read with a regex fallback")
        raw = task["_raw"]
        team_enum = re.search(r"team: \{type: string, enum: \[([^\]]*)\]", raw).group(1).split(", ")
        prio_enum = re.search(r"priority: \{type: string, enum: \[([^\]]*)\]", raw).group(1).split(", ")
        placeholders = set(re.findall(r"\{(\w+)\}", re.search(r"input_template: (.*)", raw).group(1)))
        required = ["team", "priority", "refund_eligible"]
    else:
        props = task["output_schema"]["properties"]
        team_enum = props["team"]["enum"]
        prio_enum = props["priority"]["enum"]
        required = task["output_schema"]["required"]
        placeholders = set(re.findall(r"\{(\w+)\}", task["input_template"]))
        if props["refund_eligible"].get("type") != "boolean":
            problems.append("refund_eligible is not boolean in schema")
        n_words = len(task["instructions"].split())
        print(f"instructions: {n_words} words")
        if n_words > 130:
            problems.append(f"instructions too long ({n_words} words)")

    docs = {p.stem: len(p.read_text(encoding='utf-8').split()) for p in (OUT / "docs").glob("*.md")}
    for d, w in sorted(docs.items()):
        if not 80 <= w <= 300:
            problems.append(f"doc {d} has {w} words (want 80-300)")

    splits = {}
    for name in ("test", "train"):
        rows = []
        for ln, line in enumerate((OUT / f"{name}.jsonl").read_text(encoding="utf-8").splitlines(), 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                problems.append(f"{name}.jsonl line {ln}: {e}")
        splits[name] = rows
    test, train = splits["test"], splits["train"]

    print(f"counts: test={len(test)} train={len(train)} docs={len(docs)}")
    if len(test) < 130:
        problems.append("fewer than 130 test items")
    if len(train) < 420:
        problems.append("fewer than 420 train items")
    if len(docs) < 14:
        problems.append("fewer than 14 docs")

    ids = [r.get("id") for r in test + train]
    dup_ids = [i for i, c in Counter(ids).items() if c > 1]
    if dup_ids:
        problems.append(f"duplicate ids: {dup_ids[:5]}")
    for name, rows in splits.items():
        for r in rows:
            rid = r.get("id", "?")
            if not re.fullmatch(rf"{name}-\d{{4}}", str(rid)):
                problems.append(f"bad id {rid}")
            if set(r.get("input", {})) != placeholders:
                problems.append(f"{rid}: input keys {sorted(r.get('input', {}))} != template {sorted(placeholders)}")
            if any(not isinstance(v, str) or not v.strip() for v in r.get("input", {}).values()):
                problems.append(f"{rid}: empty input field")
            e = r.get("expected", {})
            if sorted(e) != sorted(required):
                problems.append(f"{rid}: expected keys {sorted(e)}")
            if e.get("team") not in team_enum:
                problems.append(f"{rid}: team {e.get('team')!r} not in enum")
            if e.get("priority") not in prio_enum:
                problems.append(f"{rid}: priority {e.get('priority')!r} not in enum")
            if not isinstance(e.get("refund_eligible"), bool):
                problems.append(f"{rid}: refund_eligible not boolean")
            dids = r.get("expected_doc_ids")
            if name == "test" and not dids:
                problems.append(f"{rid}: missing expected_doc_ids")
            if dids is not None:
                if not 1 <= len(dids) <= 3:
                    problems.append(f"{rid}: {len(dids)} expected_doc_ids")
                for d in dids:
                    if d not in docs:
                        problems.append(f"{rid}: unknown doc id {d}")

    # Overlap: exact and near-duplicate message text (normalised) between and within splits.
    def texts(rows):
        return [(r["id"], normalise(r["input"]["body"]), normalise(r["input"]["subject"] + " " + r["input"]["body"])) for r in rows]
    tt, tr = texts(test), texts(train)
    exact = {b for _, b, _ in tt} & {b for _, b, _ in tr}
    if exact:
        problems.append(f"{len(exact)} test bodies equal a train body")
    worst = (0.0, "", "")
    near = 0
    for tid, tb, tf in tt:
        for rid, rb, rf in tr:
            for x, y in ((tb, rb), (tf, rf)):
                sm = difflib.SequenceMatcher(None, x, y, autojunk=False)
                if sm.real_quick_ratio() <= worst[0] and sm.real_quick_ratio() < 0.8:
                    continue
                if sm.quick_ratio() <= worst[0] and sm.quick_ratio() < 0.8:
                    continue
                ratio = sm.ratio()
                if ratio >= 0.8:
                    near += 1
                if ratio > worst[0]:
                    worst = (ratio, tid, rid)
    all_bodies = [b for _, b, _ in tt + tr]
    within = [b for b, c in Counter(all_bodies).items() if c > 1]
    print(f"overlap: exact test/train body matches={len(exact)}, near-duplicates (ratio>=0.80)={near}, "
          f"most similar pair {worst[1]}~{worst[2]} ratio={worst[0]:.2f}, duplicate bodies overall={len(within)}")
    if near:
        problems.append(f"{near} near-duplicate test/train pairs")
    if within:
        problems.append(f"{len(within)} duplicated bodies")

    # Balance.
    for name, rows in splits.items():
        tc = Counter(r["expected"]["team"] for r in rows)
        pc = Counter(r["expected"]["priority"] for r in rows)
        rt = sum(r["expected"]["refund_eligible"] for r in rows)
        print(f"{name}: team {dict(sorted(tc.items()))}")
        print(f"{name}: priority {{{', '.join(f'{p!r}: {pc[p]}' for p in prio_enum)}}}")
        print(f"{name}: refund_eligible true {rt}/{len(rows)} = {rt / max(1, len(rows)):.0%}")
        if name == "test":
            for t in team_enum:
                if tc[t] < 12:
                    problems.append(f"test: team {t} has {tc[t]} items (<12)")
            for p in prio_enum:
                if pc[p] < 10:
                    problems.append(f"test: priority {p} has {pc[p]} items (<10)")
        if not 0.25 <= rt / max(1, len(rows)) <= 0.40:
            problems.append(f"{name}: refund_eligible true share {rt / len(rows):.0%} outside 25-40%")
    lengths = sorted(len(r["input"]["body"].split()) for r in test + train)
    print(f"body length (words): min={lengths[0]} median={lengths[len(lengths) // 2]} max={lengths[-1]}")

    if problems:
        print(f"CHECK FAILED ({len(problems)} problems):")
        for p in problems[:50]:
            print("  -", p)
        return 1
    print("CHECK OK")
    return 0


if __name__ == "__main__":
    if "--check" not in sys.argv[1:]:
        build()
    sys.exit(check())
