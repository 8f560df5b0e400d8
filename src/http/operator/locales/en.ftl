# The operator page, English. Every text of the page is here; nl.ftl has the same messages.
# Values (KNVB ids, e-mail addresses, Sportlink's messages) come from the database and are not
# translated.

app-title = Rondo Club → Sportlink
page-title = Sync to Sportlink
lang-switch = Language
lang-nl = Nederlands
lang-en = English
nav-overview = Overview
nav-history = History
sign-in = Sign in
sign-out = Sign out
admin-token = Admin token
sign-in-wrong = That token is not right.
sign-in-incomplete = The sign-in form was incomplete.
sign-in-none = No admin token is configured.
sign-in-too-many = Too many sign-in attempts. Try again in { $seconds } seconds.
please-sign-in = Please sign in.
form-expired = This form has expired.
reload-and-retry = Reload the page and try again.
page-unavailable = The page cannot be shown right now ({ $status }).

overview = Overview
count-pending = Pending
count-failed = Failed
count-conflict-lost = Conflict lost
count-skipped = Skipped
count-synced = In Sportlink
count-superseded = Superseded
executor = Executor
executor-none = Not running in this process
executor-idle = Idle
executor-working = Working on member { $member }
executor-paused = Paused by the circuit breaker
executor-since = Since { $when }
executor-until = Resumes by itself at { $when }
executor-resume = Resume now
executor-diagnosis = Page-model diagnosis (a read-only look at the member's pages)
audit = Divergence audit
audit-unreadable = The audit's state cannot be read now.
audit-none = No divergence audit has run yet (POST /api/audits, or the audit command).
audit-rows = Rows: GET /api/audits/{ $id }/results; CSV: GET /api/audits/{ $id }/results.csv
executor-last-error = Last error: { $error }
watermark = Poll watermark
watermark-none = No completed poll yet
last-webhook = Last webhook from Rondo Club
last-webhook-none = None received yet
webhook-member = member { $member }
invalid-ids = People with an invalid KNVB id ({ $count })
invalid-ids-hint = Their edits are not detected until the id is corrected in Rondo Club.
invalid-post = Post
invalid-value = knvb-id as stored
invalid-via = Seen via
invalid-last = Last seen

pending-title = Pending changes ({ $count })
pending-none = Nothing pending.
attention-title = Failed, conflict lost and skipped ({ $count })
attention-none = Nothing needs attention.
conflicts-title = Recent conflicts
conflicts-none = No conflicts.
runs-title = Recent runs
runs-none = No runs yet.

col-change = Change
col-member = Member
col-field = Field
col-old-new = Old → new
col-status = Status
col-source = Source
col-detected = Detected
col-reason = Reason
col-action = Action
col-sportlink-value = Sportlink value
col-rondo-value = Rondo Club value
col-winner = Winner
col-decided = Decided
col-run = Run
col-when = When
col-what = What happened
col-story = Story
empty-value = (empty)
requeue = Requeue

status-pending = Pending
status-synced = In Sportlink
status-superseded = Superseded
status-conflict_lost = Conflict lost
status-skipped = Skipped
status-failed = Failed
status-unknown = Unknown

source-webhook = webhook
source-poll = poll
source-replay = replay
source-baseline = baseline

winner-sportlink = Sportlink
winner-rondo_club = Rondo Club
winner-neither = Neither

reason-waiting = Waiting for the executor.
reason-waiting-because = Waiting for the executor ({ $why }).
reason-attempt-failed = Attempt { $attempts } failed: { $error }.
reason-next-attempt = Next attempt { $when }.
reason-earlier-error = Earlier error: { $error }.
reason-none = { $status } (no reason recorded)

notice-requeued = Change { $id } is pending again; the executor was woken.
notice-resumed = The executor was resumed.
notice-bulk-requeued = { $requeued ->
    [one] 1 change is pending again
   *[other] { $requeued } changes are pending again
}; { $refused ->
    [0] none refused.
    [one] 1 refused (a newer change exists).
   *[other] { $refused } refused (a newer change exists).
}
error-not-a-change = That is not a change id.
error-not-requeued = Change { $id } was not requeued: { $error }
error-not-resumed = The executor was not resumed: { $error }
error-filter = The filter is not right: { $error }
error-bad-member = “{ $value }” is not a KNVB id (letters and digits only).

run-poll = poll: { $seen ->
    [one] 1 person seen
   *[other] { $seen } people seen
}, { $changed } changed, { $changes ->
    [one] 1 change
   *[other] { $changes } changes
}
run-full_poll = full poll: { $seen ->
    [one] 1 person seen
   *[other] { $seen } people seen
}, { $changed } changed, { $changes ->
    [one] 1 change
   *[other] { $changes } changes
}
run-watermark = watermark moved to { $when }
run-detect = detection: { $seen } seen, { $changes ->
    [one] 1 change
   *[other] { $changes } changes
}
run-baseline = baseline: { $seen ->
    [one] 1 person imported
   *[other] { $seen } people imported
}
run-replay = re-detected: member { $member }, { $changes ->
    [one] 1 change
   *[other] { $changes } changes
}
run-replay-nomember = re-detected: { $changes ->
    [one] 1 change
   *[other] { $changes } changes
}
run-sync = to Sportlink: { $done ->
    [one] 1 member done
   *[other] { $done } members done
}, { $failed } failed, { $skipped } skipped
run-sync-raw = to Sportlink: { $detail }
run-other = { $kind }: { $seen } seen, { $changes } changes
run-dry = (dry run)
run-running = still running
run-failed = failed: { $error }
runs-folded = { $count ->
    [one] 1 run that found nothing to do
   *[other] { $count } runs that found nothing to do
}, { $from } – { $to }

history-title = History
history-hint = Every change with its story: received, detected, attempts, and how it ended.
filter-q = KNVB id or name
filter-status = Status
filter-field = Field
filter-from = From (date)
filter-to = Up to and including (date)
filter-all = all
filter-apply = Search
filter-reset = Clear
history-none = No changes found.
history-older = Older changes →
history-newest = ← Newest
requeue-matching = Requeue everything matching this filter…
story-received = webhook received { $when }
story-run = seen by { $kind } { $when }
story-detected = detected { $when }: { $old } → { $new }
story-attempts = { $attempts ->
    [one] 1 attempt
   *[other] { $attempts } attempts
}
story-last-error = last error: { $error }
story-next = next attempt { $when }
story-verified = written to Sportlink and verified { $when }
story-failed = given up { $when }
story-skipped = skipped { $when }
story-superseded = superseded by change { $by }
story-conflict = conflict: { $winner } won ({ $reason }); Sportlink held { $value }
story-conflict-lost = not pushed { $when }
story-pending = still waiting

member-title = Member { $member }
member-timeline = Timeline
member-none = Nothing known about this member yet.
member-link = timeline

confirm-title = Confirm the requeue
confirm-count = { $count ->
    [0] No change matching this filter can be requeued.
    [one] 1 change (failed, skipped or conflict lost) matches this filter and will be requeued.
   *[other] { $count } changes (failed, skipped or conflict lost) match this filter and will be requeued.
}
confirm-capped = At most the { $cap } newest are requeued at a time.
confirm-yes = Yes, requeue
confirm-no = Cancel

month-1 = Jan
month-2 = Feb
month-3 = Mar
month-4 = Apr
month-5 = May
month-6 = Jun
month-7 = Jul
month-8 = Aug
month-9 = Sep
month-10 = Oct
month-11 = Nov
month-12 = Dec
date-time = { $day } { $month } { $year } { $time }
never = —
