-- The original design's four tables with their original column names (product.md §9), plus what
-- the service needs: change status and retry bookkeeping, webhook deliveries, runs.
-- Timestamps are RFC 3339 UTC text with milliseconds ('2026-11-26T11:30:20.000Z').

-- What we last saw of each member in Rondo Club: the baseline snapshot detection diffs against,
-- and per tracked field when it last changed on either side (the conflict resolver's input).
CREATE TABLE rondo_club_members (
    knvb_id TEXT PRIMARY KEY NOT NULL,
    wp_post_id INTEGER,
    tracked_fields_hash TEXT NOT NULL,
    baseline_json TEXT NOT NULL,
    sync_origin TEXT CHECK (sync_origin IN
        ('user_edit', 'sync_sportlink_to_rondo_club', 'sync_rondo_club_to_sportlink')),
    sync_origin_at TEXT,
    rondo_club_modified_gmt TEXT,
    deceased INTEGER NOT NULL DEFAULT 0,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    last_seen_source TEXT NOT NULL,
    last_verdict TEXT NOT NULL,
    email_rondo_club_modified TEXT,
    email_sportlink_modified TEXT,
    email2_rondo_club_modified TEXT,
    email2_sportlink_modified TEXT,
    mobile_rondo_club_modified TEXT,
    mobile_sportlink_modified TEXT,
    phone_rondo_club_modified TEXT,
    phone_sportlink_modified TEXT,
    datum_vog_rondo_club_modified TEXT,
    datum_vog_sportlink_modified TEXT,
    freescout_id_rondo_club_modified TEXT,
    freescout_id_sportlink_modified TEXT,
    financiele_blokkade_rondo_club_modified TEXT,
    financiele_blokkade_sportlink_modified TEXT,
    mobile2_rondo_club_modified TEXT,
    mobile2_sportlink_modified TEXT,
    phone2_rondo_club_modified TEXT,
    phone2_sportlink_modified TEXT,
    street_name_rondo_club_modified TEXT,
    street_name_sportlink_modified TEXT,
    house_number_rondo_club_modified TEXT,
    house_number_sportlink_modified TEXT,
    house_number_addition_rondo_club_modified TEXT,
    house_number_addition_sportlink_modified TEXT,
    postal_code_rondo_club_modified TEXT,
    postal_code_sportlink_modified TEXT,
    city_rondo_club_modified TEXT,
    city_sportlink_modified TEXT,
    country_code_rondo_club_modified TEXT,
    country_code_sportlink_modified TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX rondo_club_members_wp_post ON rondo_club_members (wp_post_id);

-- Detection and sync runs (poll, full poll, baseline import, replay, executor runs).
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
    knvb_id TEXT,
    dry_run INTEGER NOT NULL DEFAULT 0,
    people_seen INTEGER NOT NULL DEFAULT 0,
    changes_detected INTEGER NOT NULL DEFAULT 0,
    detail TEXT,
    error TEXT
);
CREATE INDEX runs_started ON runs (started_at);

-- Every webhook delivery that passed signature verification, keyed by its webhook-id, with the
-- raw body so an operator can replay it.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    received_at TEXT NOT NULL,
    webhook_timestamp INTEGER NOT NULL,
    event_type TEXT,
    wp_post_id INTEGER,
    knvb_id TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    body BLOB NOT NULL,
    replayed_at TEXT
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);

-- One row per detected change of one field.
CREATE TABLE rondo_club_change_detections (
    id INTEGER PRIMARY KEY,
    knvb_id TEXT NOT NULL REFERENCES rondo_club_members (knvb_id),
    field_name TEXT NOT NULL,
    old_value TEXT NOT NULL,
    new_value TEXT NOT NULL,
    -- What Sportlink should hold if nobody touched it: the old value of the earliest change in a
    -- chain of superseded, never-pushed changes. The executor's conflict guard compares with it.
    expected_sportlink_value TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    rondo_club_modified_gmt TEXT,
    detection_run_id INTEGER REFERENCES runs (id),
    delivery_id TEXT REFERENCES webhook_deliveries (id),
    source TEXT NOT NULL CHECK (source IN ('webhook', 'poll', 'replay', 'baseline')),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
        ('pending', 'synced', 'superseded', 'conflict_lost', 'skipped', 'failed')),
    status_reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT,
    superseded_by INTEGER REFERENCES rondo_club_change_detections (id),
    synced_at TEXT,
    resolved_at TEXT,
    updated_at TEXT NOT NULL
);
-- The executor: due pending changes; the operator page: changes by status.
CREATE INDEX changes_status_next ON rondo_club_change_detections (status, next_attempt_at);
-- Per member and field: supersede, the member's history.
CREATE INDEX changes_member_field ON rondo_club_change_detections (knvb_id, field_name, status);

-- Singleton: the poll's watermark.
CREATE TABLE reverse_sync_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_detection_at TEXT,
    updated_at TEXT NOT NULL
);
INSERT INTO reverse_sync_state (id, last_detection_at, updated_at)
VALUES (1, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- Every conflict decision where the values differed.
CREATE TABLE conflict_resolutions (
    id INTEGER PRIMARY KEY,
    knvb_id TEXT NOT NULL,
    field_name TEXT NOT NULL,
    sportlink_value TEXT,
    rondo_club_value TEXT,
    sportlink_modified TEXT,
    rondo_club_modified TEXT,
    winning_system TEXT NOT NULL CHECK (winning_system IN ('sportlink', 'rondo_club', 'neither')),
    resolution_reason TEXT NOT NULL,
    resolved_at TEXT NOT NULL,
    change_id INTEGER REFERENCES rondo_club_change_detections (id)
);
CREATE INDEX conflict_resolutions_member ON conflict_resolutions (knvb_id, resolved_at);
