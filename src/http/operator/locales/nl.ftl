# Het beheerscherm (operator page), Nederlands. Elke tekst van de pagina staat hier; en.ftl heeft
# dezelfde berichten. Waarden (KNVB-id's, e-mailadressen, foutmeldingen van Sportlink) komen uit
# de database en worden niet vertaald.

app-title = Rondo Club → Sportlink
page-title = Synchronisatie naar Sportlink
lang-switch = Taal
lang-nl = Nederlands
lang-en = English
nav-overview = Overzicht
nav-history = Geschiedenis
sign-in = Aanmelden
sign-out = Afmelden
admin-token = Beheertoken
sign-in-wrong = Dat token klopt niet.
sign-in-incomplete = Het aanmeldformulier was onvolledig.
sign-in-none = Er is geen beheertoken ingesteld.
sign-in-too-many = Te veel aanmeldpogingen. Probeer het over { $seconds } seconden opnieuw.
please-sign-in = Meld je eerst aan.
form-expired = Dit formulier is verlopen.
reload-and-retry = Laad de pagina opnieuw en probeer het nog eens.
page-unavailable = De pagina kan nu niet worden getoond ({ $status }).

overview = Overzicht
count-pending = Wachtend
count-failed = Mislukt
count-conflict-lost = Conflict verloren
count-skipped = Overgeslagen
count-synced = In Sportlink
count-superseded = Vervangen
executor = Verwerking
executor-none = Draait niet in dit proces
executor-idle = Klaar voor werk
executor-working = Bezig met lid { $member }
executor-paused = Gepauzeerd door de stroomonderbreker
executor-since = Sinds { $when }
executor-until = Gaat vanzelf verder om { $when }
executor-resume = Nu hervatten
executor-diagnosis = Diagnose van het paginamodel (alleen-lezen blik op de pagina's van het lid)
audit = Vergelijkingscontrole
audit-unreadable = De stand van de controle is nu niet te lezen.
audit-none = Er heeft nog geen vergelijkingscontrole gedraaid (POST /api/audits, of het audit-commando).
audit-rows = Regels: GET /api/audits/{ $id }/results; CSV: GET /api/audits/{ $id }/results.csv
executor-last-error = Laatste fout: { $error }
watermark = Peilmoment van de controle
watermark-none = Nog geen controle afgerond
last-webhook = Laatste melding uit Rondo Club
last-webhook-none = Nog niets ontvangen
webhook-member = lid { $member }
invalid-ids = Personen met een ongeldig KNVB-id ({ $count })
invalid-ids-hint = Hun wijzigingen worden pas gezien als het id in Rondo Club is verbeterd.
invalid-post = Bericht
invalid-value = knvb-id zoals opgeslagen
invalid-via = Gezien via
invalid-last = Laatst gezien

pending-title = Wachtende wijzigingen ({ $count })
pending-none = Niets wachtend.
attention-title = Mislukt, conflict verloren en overgeslagen ({ $count })
attention-none = Niets vraagt aandacht.
conflicts-title = Recente conflicten
conflicts-none = Geen conflicten.
runs-title = Recente runs
runs-none = Nog geen runs.

col-change = Wijziging
col-member = Lid
col-field = Veld
col-old-new = Oud → nieuw
col-status = Status
col-source = Bron
col-detected = Gezien
col-reason = Reden
col-action = Actie
col-sportlink-value = Waarde in Sportlink
col-rondo-value = Waarde in Rondo Club
col-winner = Winnaar
col-decided = Besloten
col-run = Run
col-when = Wanneer
col-what = Wat er gebeurde
col-story = Verloop
empty-value = (leeg)
requeue = Opnieuw proberen

status-pending = Wachtend
status-synced = In Sportlink
status-superseded = Vervangen
status-conflict_lost = Conflict verloren
status-skipped = Overgeslagen
status-failed = Mislukt
status-unknown = Onbekend

source-webhook = melding
source-poll = controle
source-replay = opnieuw afgespeeld
source-baseline = beginstand

winner-sportlink = Sportlink
winner-rondo_club = Rondo Club
winner-neither = Geen van beide

reason-waiting = Wacht op verwerking.
reason-waiting-because = Wacht op verwerking ({ $why }).
reason-attempt-failed = Poging { $attempts } mislukt: { $error }.
reason-next-attempt = Volgende poging { $when }.
reason-earlier-error = Eerdere fout: { $error }.
reason-none = { $status } (geen reden vastgelegd)

notice-requeued = Wijziging { $id } wacht weer; de verwerking is gewekt.
notice-resumed = De verwerking is hervat.
notice-bulk-requeued = { $requeued ->
    [one] 1 wijziging wacht weer
   *[other] { $requeued } wijzigingen wachten weer
}; { $refused ->
    [0] niets geweigerd.
    [one] 1 geweigerd (een nieuwere wijziging bestaat).
   *[other] { $refused } geweigerd (een nieuwere wijziging bestaat).
}
error-not-a-change = Dat is geen wijzigingsnummer.
error-not-requeued = Wijziging { $id } is niet opnieuw in de wachtrij gezet: { $error }
error-not-resumed = De verwerking is niet hervat: { $error }
error-filter = Het filter klopt niet: { $error }
error-bad-member = „{ $value }” is geen KNVB-id (alleen letters en cijfers).

run-poll = controle: { $seen ->
    [one] 1 persoon gezien
   *[other] { $seen } personen gezien
}, { $changed } gewijzigd, { $changes ->
    [one] 1 wijziging
   *[other] { $changes } wijzigingen
}
run-full_poll = volledige controle: { $seen ->
    [one] 1 persoon gezien
   *[other] { $seen } personen gezien
}, { $changed } gewijzigd, { $changes ->
    [one] 1 wijziging
   *[other] { $changes } wijzigingen
}
run-watermark = peilmoment naar { $when }
run-detect = detectie: { $seen } gezien, { $changes ->
    [one] 1 wijziging
   *[other] { $changes } wijzigingen
}
run-baseline = beginstand: { $seen ->
    [one] 1 persoon ingelezen
   *[other] { $seen } personen ingelezen
}
run-replay = opnieuw bekeken: lid { $member }, { $changes ->
    [one] 1 wijziging
   *[other] { $changes } wijzigingen
}
run-replay-nomember = opnieuw bekeken: { $changes ->
    [one] 1 wijziging
   *[other] { $changes } wijzigingen
}
run-sync = naar Sportlink: { $done ->
    [one] 1 lid verwerkt
   *[other] { $done } leden verwerkt
}, { $failed } mislukt, { $skipped } overgeslagen
run-sync-raw = naar Sportlink: { $detail }
run-other = { $kind }: { $seen } gezien, { $changes } wijzigingen
run-dry = (proefdraai)
run-running = loopt nog
run-failed = mislukt: { $error }
runs-folded = { $count ->
    [one] 1 run zonder iets te doen
   *[other] { $count } runs zonder iets te doen
}, { $from } – { $to }

history-title = Geschiedenis
history-hint = Elke wijziging met haar verloop: ontvangen, gezien, pogingen, en hoe het afliep.
filter-q = KNVB-id of naam
filter-status = Status
filter-field = Veld
filter-from = Vanaf (datum)
filter-to = Tot en met (datum)
filter-all = alle
filter-apply = Zoeken
filter-reset = Wissen
history-none = Geen wijzigingen gevonden.
history-older = Oudere wijzigingen →
history-newest = ← Nieuwste
requeue-matching = Alles wat aan dit filter voldoet opnieuw proberen…
story-received = melding ontvangen { $when }
story-run = gezien bij { $kind } { $when }
story-detected = gezien { $when }: { $old } → { $new }
story-attempts = { $attempts ->
    [one] 1 poging
   *[other] { $attempts } pogingen
}
story-last-error = laatste fout: { $error }
story-next = volgende poging { $when }
story-verified = in Sportlink gezet en gecontroleerd { $when }
story-failed = opgegeven { $when }
story-skipped = overgeslagen { $when }
story-superseded = vervangen door wijziging { $by }
story-conflict = conflict: { $winner } won ({ $reason }); Sportlink had { $value }
story-conflict-lost = niet doorgezet { $when }
story-pending = wacht nog

member-title = Lid { $member }
member-timeline = Tijdlijn
member-none = Nog niets bekend over dit lid.
member-link = tijdlijn

confirm-title = Opnieuw proberen bevestigen
confirm-count = { $count ->
    [0] Geen enkele wijziging die aan dit filter voldoet kan opnieuw worden geprobeerd.
    [one] 1 wijziging (mislukt, overgeslagen of conflict verloren) voldoet aan dit filter en wordt opnieuw geprobeerd.
   *[other] { $count } wijzigingen (mislukt, overgeslagen of conflict verloren) voldoen aan dit filter en worden opnieuw geprobeerd.
}
confirm-capped = Per keer worden hooguit de { $cap } nieuwste verwerkt.
confirm-yes = Ja, opnieuw proberen
confirm-no = Annuleren

month-1 = jan
month-2 = feb
month-3 = mrt
month-4 = apr
month-5 = mei
month-6 = jun
month-7 = jul
month-8 = aug
month-9 = sep
month-10 = okt
month-11 = nov
month-12 = dec
date-time = { $day } { $month } { $year } { $time }
never = —
