-- The history (operator page, `GET /api/history`): newest first, a page at a time by keyset
-- (`id < cursor`), filtered by status, field, member or detection time; each row joined to its
-- conflict decision. Without these, a filter over 100,000 changes scans the table.
CREATE INDEX changes_status_id ON rondo_club_change_detections (status, id);
CREATE INDEX changes_field_id ON rondo_club_change_detections (field_name, id);
CREATE INDEX changes_status_field_id ON rondo_club_change_detections (status, field_name, id);
CREATE INDEX changes_member_id ON rondo_club_change_detections (knvb_id, id);
CREATE INDEX changes_detected ON rondo_club_change_detections (detected_at);
CREATE INDEX conflict_resolutions_change ON conflict_resolutions (change_id);
-- The member's name as Rondo Club last showed it (first name, infix, last name), so the history
-- can be searched by name; NULL until a sighting carries it.
ALTER TABLE rondo_club_members ADD COLUMN display_name TEXT;
