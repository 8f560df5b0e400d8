-- The divergence audit (issue 13, part 3): every member's tracked fields read read-only in
-- Sportlink and compared with Rondo Club. One row per audit run, one per member it covers (what
-- makes it resumable: a member marked done is never read again by that run), one per member and
-- field it reported.

CREATE TABLE audit_runs (
    id INTEGER PRIMARY KEY,
    -- listing: Rondo Club's people are being listed; reading: members are being read in
    -- Sportlink; then completed, cancelled or failed.
    status TEXT NOT NULL CHECK (status IN
        ('listing', 'reading', 'completed', 'cancelled', 'failed')),
    -- Who started it: cli, api, schedule.
    trigger TEXT NOT NULL,
    -- Where Rondo Club's state came from: rest (fresh from its REST API) or stored (the last
    -- state the service saw, when Rondo Club is not configured).
    rondo_source TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    members_total INTEGER NOT NULL DEFAULT 0,
    members_done INTEGER NOT NULL DEFAULT 0,
    -- Time spent on the members done so far (pacing included), for the estimate of the rest.
    busy_ms INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX audit_runs_status ON audit_runs (status);

CREATE TABLE audit_members (
    audit_id INTEGER NOT NULL REFERENCES audit_runs (id) ON DELETE CASCADE,
    knvb_id TEXT NOT NULL,
    -- Listed by Rondo Club (1), or only known from the service's own records (0).
    in_rondo_club INTEGER NOT NULL,
    wp_post_id INTEGER,
    -- Rondo Club's tracked values when listed (JSON object field -> canonical value).
    rondo_values_json TEXT,
    rondo_modified_gmt TEXT,
    state TEXT NOT NULL DEFAULT 'todo' CHECK (state IN ('todo', 'done')),
    -- What Sportlink showed: found, former, unknown (no such member), error.
    sportlink_state TEXT,
    error TEXT,
    read_at TEXT,
    read_ms INTEGER,
    PRIMARY KEY (audit_id, knvb_id)
);
CREATE INDEX audit_members_todo ON audit_members (audit_id, state);

CREATE TABLE audit_results (
    id INTEGER PRIMARY KEY,
    audit_id INTEGER NOT NULL REFERENCES audit_runs (id) ON DELETE CASCADE,
    knvb_id TEXT NOT NULL,
    -- NULL for a verdict about the whole member (unknown on one side).
    field_name TEXT,
    verdict TEXT NOT NULL CHECK (verdict IN
        ('equal', 'differs_pending', 'differs', 'unknown_in_sportlink', 'unknown_in_rondo_club',
         'unreadable')),
    sportlink_value TEXT,
    rondo_club_value TEXT,
    sportlink_modified TEXT,
    rondo_club_modified TEXT,
    -- The pending change that carries the difference (differs_pending).
    pending_change_id INTEGER,
    detail TEXT,
    -- An operator queued this row as a change (who, when, which change row).
    queued_change_id INTEGER REFERENCES rondo_club_change_detections (id),
    queued_at TEXT,
    queued_by TEXT
);
CREATE INDEX audit_results_run ON audit_results (audit_id, verdict, knvb_id);
