-- People whose `knvb-id` is there but not a usable id (a zero-width space, punctuation): not
-- filed silently as "not a member", but kept here for the operator until the id is fixed.
CREATE TABLE invalid_knvb_ids (
    wp_post_id INTEGER PRIMARY KEY NOT NULL,
    -- The value with invisible and control characters escaped (\u{200b}), at most 64 characters.
    shown_value TEXT NOT NULL,
    source TEXT NOT NULL,
    delivery_id TEXT,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
