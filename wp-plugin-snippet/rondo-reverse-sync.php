<?php
/**
 * Plugin Name: Rondo Reverse Sync webhook
 * Description: Tells rondo-reverse-sync, with a signed webhook, whenever a person may have changed.
 * Version:     1.0.0
 * Requires PHP: 8.0
 * License:     MIT
 *
 * Drop this file into wp-content/mu-plugins/ and configure it in wp-config.php (see README.md):
 *
 *   define('RONDO_REVERSE_SYNC_URL', 'https://sync.example.org/webhooks/rondo-club');
 *   define('RONDO_REVERSE_SYNC_SECRET', 'whsec_...');
 *   define('RONDO_REVERSE_SYNC_SYNC_USERS', 'sportlink-sync');
 *
 * Why it sends at `shutdown`: for a REST update WordPress fires `save_post` before the `acf` field
 * values are written, and a meta-only write fires no post hook at all. So every hook that may
 * signal a change only marks the person dirty, and one webhook per dirty person is sent at the
 * end of the request, with the values as they are then.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

final class Rondo_Reverse_Sync
{
    /**
     * The one list of tracked ACF fields (field name => how its value is sent). Repeaters are
     * stored by ACF as a row count under the field name plus one meta key per cell,
     * `{field}_{row}_{sub_field}`; writes to those keys mark the person dirty too.
     */
    public const TRACKED_FIELDS = [
        'knvb-id'             => 'string',
        'contact_info'        => 'repeater',
        'email_1'             => 'string',
        'email_2'             => 'string',
        'mobile_1'            => 'string',
        'mobile_2'            => 'string',
        'telephone_1'         => 'string',
        'telephone_2'         => 'string',
        'addresses'           => 'repeater',
        'datum-vog'           => 'date',
        'freescout-id'        => 'number',
        'financiele-blokkade' => 'bool',
        'datum-overlijden'    => 'date',
        'former_member'       => 'bool',
    ];

    /**
     * Sent along (when set) so the service can show and find members by name; not tracked: a
     * name is never pushed, and a meta write of a name alone sends nothing.
     */
    public const NAME_FIELDS = ['first_name', 'infix', 'last_name'];

    public const POST_TYPE      = 'person';
    public const ORIGIN_SYNC    = 'sync_sportlink_to_rondo_club';
    public const ORIGIN_USER    = 'user_edit';
    public const RETRY_HOOK     = 'rondo_reverse_sync_retry';
    public const SWEEP_HOOK     = 'rondo_reverse_sync_sweep';
    public const PENDING_PREFIX = 'rondo_reverse_sync_pending_';

    private const DEFAULT_TIMEOUT      = 3;
    /** The whole shutdown send, all persons together, in seconds. */
    private const DEFAULT_SHUTDOWN_BUDGET = 2;
    /** Below this many seconds left, a delivery is queued rather than tried. */
    private const MIN_ATTEMPT_TIME     = 0.1;
    private const DEFAULT_MAX_ATTEMPTS = 10;
    private const DEFAULT_RETRY_BASE   = 60;
    private const MAX_RETRY_DELAY      = 12 * 3600;

    /**
     * Persons touched in this request: post id => what we know about the write.
     *
     * @var array<int, array{created: bool, user: string, snapshot: ?array}>
     */
    private static array $dirty = [];

    public static function boot(): void
    {
        add_action('save_post', [self::class, 'on_save_post'], 10, 3);
        add_action('wp_after_insert_post', [self::class, 'on_after_insert_post'], 10, 3);
        add_action('added_post_meta', [self::class, 'on_meta_write'], 10, 3);
        add_action('updated_post_meta', [self::class, 'on_meta_write'], 10, 3);
        add_action('deleted_post_meta', [self::class, 'on_meta_write'], 10, 3);
        add_action('trashed_post', [self::class, 'on_status_change'], 10, 1);
        add_action('untrashed_post', [self::class, 'on_status_change'], 10, 1);
        add_action('before_delete_post', [self::class, 'on_before_delete'], 10, 1);
        add_action('shutdown', [self::class, 'flush'], 100);
        add_action(self::RETRY_HOOK, [self::class, 'retry'], 10, 1);
        add_action(self::SWEEP_HOOK, [self::class, 'sweep']);
    }

    // ---------------------------------------------------------------- marking dirty

    public static function on_save_post($post_id, $post = null, $update = true): void
    {
        self::mark((int) $post_id, !$update);
    }

    public static function on_after_insert_post($post_id, $post = null, $update = true): void
    {
        self::mark((int) $post_id, !$update);
    }

    /** @param mixed $meta_id_or_ids */
    public static function on_meta_write($meta_id_or_ids, $object_id, $meta_key): void
    {
        if (is_string($meta_key) && self::is_tracked_meta_key($meta_key)) {
            self::mark((int) $object_id, false);
        }
    }

    public static function on_status_change($post_id): void
    {
        self::mark((int) $post_id, false);
    }

    public static function on_before_delete($post_id): void
    {
        $post_id = (int) $post_id;
        if (get_post_type($post_id) !== self::POST_TYPE) {
            return;
        }
        // After the delete there is nothing left to read at shutdown: keep what we need now.
        self::mark($post_id, false);
        if (isset(self::$dirty[$post_id])) {
            self::$dirty[$post_id]['snapshot'] = [
                'modified_gmt' => self::modified_gmt(get_post($post_id)),
                'acf'          => self::tracked_values($post_id),
            ];
        }
    }

    public static function is_tracked_meta_key(string $meta_key): bool
    {
        if (isset(self::TRACKED_FIELDS[$meta_key])) {
            return true;
        }
        foreach (self::TRACKED_FIELDS as $field => $kind) {
            if ($kind === 'repeater' && preg_match('/^' . preg_quote($field, '/') . '_\d+_./', $meta_key) === 1) {
                return true;
            }
        }
        return false;
    }

    private static function mark(int $post_id, bool $created): void
    {
        if ($post_id <= 0 || (defined('DOING_AUTOSAVE') && DOING_AUTOSAVE)) {
            return;
        }
        if (wp_is_post_revision($post_id) || wp_is_post_autosave($post_id)) {
            return;
        }
        if (get_post_type($post_id) !== self::POST_TYPE) {
            return;
        }
        $user  = wp_get_current_user();
        $login = ($user instanceof \WP_User && $user->exists()) ? (string) $user->user_login : '';

        $previous = self::$dirty[$post_id] ?? ['created' => false, 'user' => '', 'snapshot' => null];
        self::$dirty[$post_id] = [
            'created'  => $previous['created'] || $created,
            'user'     => $login !== '' ? $login : $previous['user'],
            'snapshot' => $previous['snapshot'],
        ];
    }

    // ---------------------------------------------------------------- sending

    /**
     * Runs at `shutdown`: one webhook per dirty person, with the values as they are now. The whole
     * send has one deadline (RONDO_REVERSE_SYNC_SHUTDOWN_BUDGET, 2 s): a receiver that hangs
     * costs the request at most that, not a timeout per person. At the first transport failure
     * (a timeout, a refused connection), or once the deadline is spent, the remaining persons are
     * queued for WP-Cron without being tried.
     */
    public static function flush(): void
    {
        $dirty       = self::$dirty;
        self::$dirty = [];
        if ($dirty === [] || !self::configured()) {
            return;
        }
        $deadline = microtime(true) + self::shutdown_budget();
        $give_up  = '';
        foreach ($dirty as $post_id => $mark) {
            try {
                $origin = self::origin_for($mark['user'], $post_id);
                $job    = [
                    'id'         => self::new_message_id(),
                    'post_id'    => $post_id,
                    'created'    => $mark['created'],
                    'origin'     => $origin,
                    'user'       => $mark['user'],
                    'snapshot'   => $mark['snapshot'],
                    'attempts'   => 0,
                    'last_error' => '',
                ];
                $left = $deadline - microtime(true);
                if ($give_up === '' && $left < self::MIN_ATTEMPT_TIME) {
                    $give_up = 'the shutdown send deadline was spent';
                }
                if ($give_up !== '') {
                    self::defer($job, $give_up);
                    continue;
                }
                $failure = self::attempt($job, min(self::timeout(), $left));
                if ($failure !== null) {
                    $give_up = 'an earlier delivery in this request failed: ' . $failure;
                }
            } catch (\Throwable $e) {
                error_log('rondo-reverse-sync: could not send the webhook for person ' . $post_id . ': ' . $e->getMessage());
            }
        }
    }

    /**
     * Stores a delivery that was not tried in this request, for WP-Cron to send as soon as it
     * runs (same webhook id from then on, values as they are when it is sent).
     *
     * @param array<string, mixed> $job
     */
    private static function defer(array $job, string $why): void
    {
        $job['last_error'] = 'not tried at shutdown: ' . $why;
        self::store_pending($job);
        wp_schedule_single_event(time(), self::RETRY_HOOK, [$job['id']]);
        self::ensure_sweep();
    }

    /** @param array<string, mixed> $job */
    private static function store_pending(array $job): void
    {
        $option_name = self::PENDING_PREFIX . $job['id'];
        if (get_option($option_name) === false) {
            add_option($option_name, $job, '', 'no');
        } else {
            update_option($option_name, $job, false);
        }
    }

    private static function ensure_sweep(): void
    {
        if (wp_next_scheduled(self::SWEEP_HOOK) === false) {
            wp_schedule_event(time() + HOUR_IN_SECONDS, 'hourly', self::SWEEP_HOOK);
        }
    }

    /** WP-Cron: send a stored failed delivery again, same webhook id, fresh values and signature. */
    public static function retry($message_id): void
    {
        $job = get_option(self::PENDING_PREFIX . (string) $message_id);
        if (!is_array($job) || !self::configured()) {
            return;
        }
        self::attempt($job);
    }

    /** WP-Cron, hourly while deliveries are pending: re-schedule any whose cron event was lost. */
    public static function sweep(): void
    {
        $ids = self::pending_message_ids();
        if ($ids === []) {
            wp_clear_scheduled_hook(self::SWEEP_HOOK);
            return;
        }
        foreach ($ids as $id) {
            if (wp_next_scheduled(self::RETRY_HOOK, [$id]) === false) {
                wp_schedule_single_event(time(), self::RETRY_HOOK, [$id]);
            }
        }
    }

    /** @return list<string> the webhook ids of the deliveries waiting for a retry */
    public static function pending_message_ids(): array
    {
        global $wpdb;
        $like  = $wpdb->esc_like(self::PENDING_PREFIX) . '%';
        $names = $wpdb->get_col($wpdb->prepare("SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE %s", $like));
        return array_values(array_map(
            static fn (string $name): string => substr($name, strlen(self::PENDING_PREFIX)),
            is_array($names) ? $names : []
        ));
    }

    /**
     * Sends a delivery once; on failure keeps it for a WP-Cron retry (or gives it up).
     *
     * @param array<string, mixed> $job
     * @return ?string null when it was sent (or there was nothing to send); else why a transport
     *                 failure (timeout, refused connection) kept it from arriving
     */
    private static function attempt(array $job, ?float $timeout = null): ?string
    {
        $event       = self::build_event($job);
        $option_name = self::PENDING_PREFIX . $job['id'];
        if ($event === null) {
            delete_option($option_name);
            return null;
        }
        $result = self::send((string) $job['id'], $event, (int) $job['post_id'], $timeout ?? self::timeout());
        if ($result === true) {
            delete_option($option_name);
            return null;
        }
        $transport_failure = str_starts_with($result, 'HTTP ') ? null : $result;

        $job['attempts']   = (int) $job['attempts'] + 1;
        $job['last_error'] = $result;
        if ($job['attempts'] >= self::max_attempts()) {
            delete_option($option_name);
            error_log(sprintf(
                'rondo-reverse-sync: gave up on webhook %s for person %d after %d attempts: %s',
                $job['id'],
                $job['post_id'],
                $job['attempts'],
                $result
            ));
            do_action('rondo_reverse_sync_gave_up', $job['id'], $job['post_id'], $result);
            return $transport_failure;
        }

        error_log(sprintf(
            'rondo-reverse-sync: webhook %s for person %d failed (attempt %d, retrying later): %s',
            $job['id'],
            $job['post_id'],
            $job['attempts'],
            $result
        ));
        self::store_pending($job);
        wp_schedule_single_event(time() + self::retry_delay($job['attempts']), self::RETRY_HOOK, [$job['id']]);
        self::ensure_sweep();
        return $transport_failure;
    }

    /**
     * The event as of now. A retry sends the person's current values rather than those of the
     * failed attempt, so a late retry can never undo a newer edit that was delivered meanwhile.
     *
     * @param array<string, mixed> $job
     * @return ?array<string, mixed> null when there is nothing (left) to report
     */
    private static function build_event(array $job): ?array
    {
        $post_id = (int) $job['post_id'];
        $post    = get_post($post_id);
        $data    = ['id' => $post_id];

        if ($post instanceof \WP_Post) {
            if ($post->post_type !== self::POST_TYPE || in_array($post->post_status, ['auto-draft', 'inherit'], true)) {
                return null;
            }
            $type                 = $post->post_status === 'trash'
                ? 'person.trashed'
                : ($job['created'] ? 'person.created' : 'person.updated');
            $data['modified_gmt'] = self::modified_gmt($post);
            // An empty PHP array would be encoded as a JSON list.
            $data['acf']          = self::tracked_values($post_id) ?: new \stdClass();
        } elseif (is_array($job['snapshot'] ?? null)) {
            $type                 = 'person.trashed';
            $data['modified_gmt'] = $job['snapshot']['modified_gmt'];
            $data['acf']          = $job['snapshot']['acf'] ?: new \stdClass();
        } else {
            return null;
        }
        $data['origin'] = (string) $job['origin'];
        $data['user']   = (string) $job['user'];

        return [
            'type'      => $type,
            'timestamp' => gmdate('Y-m-d\TH:i:s\Z'),
            'data'      => $data,
        ];
    }

    /**
     * Signs (Standard Webhooks) and posts one event.
     *
     * @param array<string, mixed> $event
     * @return true|string true when the receiver answered 2xx, else why not
     */
    private static function send(string $message_id, array $event, int $post_id, float $timeout): bool|string
    {
        $body = wp_json_encode($event, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        if (!is_string($body)) {
            return 'the event could not be encoded as JSON';
        }
        $key = self::signing_key();
        if ($key === null) {
            return 'RONDO_REVERSE_SYNC_SECRET is not a whsec_ secret';
        }
        $timestamp = (string) time();
        $signature = base64_encode(hash_hmac('sha256', $message_id . '.' . $timestamp . '.' . $body, $key, true));
        $url       = (string) apply_filters('rondo_reverse_sync_url', RONDO_REVERSE_SYNC_URL, $post_id);

        $response = wp_remote_post($url, [
            'timeout'     => $timeout,
            'redirection' => 0,
            'user-agent'  => 'rondo-reverse-sync-snippet/1.0',
            'headers'     => [
                'content-type'      => 'application/json',
                'webhook-id'        => $message_id,
                'webhook-timestamp' => $timestamp,
                'webhook-signature' => 'v1,' . $signature,
            ],
            'body'        => $body,
        ]);
        if (is_wp_error($response)) {
            return $response->get_error_message();
        }
        $code = (int) wp_remote_retrieve_response_code($response);
        return ($code >= 200 && $code < 300) ? true : 'HTTP ' . $code;
    }

    // ---------------------------------------------------------------- values

    /**
     * @return array<string, mixed> the tracked fields as Rondo Club's REST `acf` shows them, and
     *                              the name fields that are set
     */
    public static function tracked_values(int $post_id): array
    {
        $values = function_exists('get_fields')
            ? self::values_from_acf($post_id)
            : self::values_from_meta($post_id);
        foreach (self::NAME_FIELDS as $field) {
            $name = function_exists('get_field')
                ? get_field($field, $post_id, false)
                : get_post_meta($post_id, $field, true);
            if (is_string($name) && trim($name) !== '') {
                $values[$field] = $name;
            }
        }
        return $values;
    }

    /** @return array<string, mixed> */
    private static function values_from_acf(int $post_id): array
    {
        $all = get_fields($post_id);
        $all = is_array($all) ? $all : [];
        $out = [];
        foreach (self::TRACKED_FIELDS as $field => $kind) {
            if (!array_key_exists($field, $all)) {
                continue;
            }
            $value = $all[$field];
            if ($kind === 'date') {
                // The raw value: a date picker's display format is site configuration.
                $value = get_field($field, $post_id, false);
            }
            $out[$field] = self::typed($kind, $value);
        }
        return $out;
    }

    /**
     * Without ACF loaded, read ACF's own storage layout from post meta.
     *
     * @return array<string, mixed>
     */
    private static function values_from_meta(int $post_id): array
    {
        $meta = get_post_meta($post_id);
        $meta = is_array($meta) ? $meta : [];
        $out  = [];
        foreach (self::TRACKED_FIELDS as $field => $kind) {
            if (!isset($meta[$field][0])) {
                continue;
            }
            if ($kind !== 'repeater') {
                $out[$field] = self::typed($kind, maybe_unserialize($meta[$field][0]));
                continue;
            }
            $stored = maybe_unserialize($meta[$field][0]);
            if (is_array($stored)) {
                // The whole repeater as one serialized array of rows (written without ACF):
                // these are the rows, never "no rows".
                $out[$field] = array_values($stored);
                continue;
            }
            if ($stored === '' || $stored === null) {
                $out[$field] = [];
                continue;
            }
            if (!is_numeric($stored)) {
                // Neither ACF's row count nor a list of rows: say that it cannot be read, so the
                // service treats the field as unknown rather than as emptied.
                $out[$field] = ['unreadable' => 'not a row count or a list of rows'];
                continue;
            }
            $rows  = [];
            $count = max(0, (int) $stored);
            for ($row = 0; $row < $count; $row++) {
                $prefix = $field . '_' . $row . '_';
                $cells  = [];
                foreach ($meta as $key => $values) {
                    $key = (string) $key;
                    if (str_starts_with($key, $prefix) && isset($values[0])) {
                        $cells[substr($key, strlen($prefix))] = maybe_unserialize($values[0]);
                    }
                }
                $rows[] = $cells;
            }
            $out[$field] = $rows;
        }
        return $out;
    }

    /** @param mixed $value */
    private static function typed(string $kind, $value): mixed
    {
        switch ($kind) {
            case 'bool':
                return !($value === null || $value === false || $value === '' || $value === '0' || $value === 0);
            case 'number':
                if (is_int($value) || is_float($value)) {
                    return $value;
                }
                if (is_string($value) && is_numeric(trim($value))) {
                    return trim($value) + 0;
                }
                return ($value === '' || $value === null || $value === false) ? null : $value;
            case 'date':
                if (is_string($value) && preg_match('/^(\d{4})(\d{2})(\d{2})$/', $value, $m) === 1) {
                    return $m[1] . '-' . $m[2] . '-' . $m[3];
                }
                return ($value === false) ? null : $value;
            case 'repeater':
                if (is_array($value)) {
                    return array_values($value);
                }
                // An empty repeater is false, null or ''; anything else cannot be read as rows,
                // and must not look like "every row removed".
                return ($value === null || $value === false || $value === '')
                    ? []
                    : ['unreadable' => 'not a list of rows'];
            default:
                return ($value === null || $value === false) ? null : (is_scalar($value) ? (string) $value : $value);
        }
    }

    private static function modified_gmt(?\WP_Post $post): ?string
    {
        if (!$post instanceof \WP_Post || $post->post_modified_gmt === '' || $post->post_modified_gmt === '0000-00-00 00:00:00') {
            return null;
        }
        // UTC without a zone, exactly as the REST API's `modified_gmt`.
        return mysql_to_rfc3339($post->post_modified_gmt);
    }

    // ---------------------------------------------------------------- configuration

    private static function origin_for(string $login, int $post_id): string
    {
        $sync_users = defined('RONDO_REVERSE_SYNC_SYNC_USERS')
            ? array_filter(array_map('trim', explode(',', (string) RONDO_REVERSE_SYNC_SYNC_USERS)))
            : [];
        $origin = ($login !== '' && in_array($login, $sync_users, true)) ? self::ORIGIN_SYNC : self::ORIGIN_USER;
        return (string) apply_filters('rondo_reverse_sync_origin', $origin, $login, $post_id);
    }

    private static function configured(): bool
    {
        static $warned = false;
        if (defined('RONDO_REVERSE_SYNC_URL') && (string) RONDO_REVERSE_SYNC_URL !== '' && self::signing_key() !== null) {
            return true;
        }
        if (!$warned) {
            $warned = true;
            error_log('rondo-reverse-sync: RONDO_REVERSE_SYNC_URL and RONDO_REVERSE_SYNC_SECRET (whsec_...) must be defined in wp-config.php; no webhooks are sent');
        }
        return false;
    }

    private static function signing_key(): ?string
    {
        if (!defined('RONDO_REVERSE_SYNC_SECRET')) {
            return null;
        }
        $secret = (string) RONDO_REVERSE_SYNC_SECRET;
        if (!str_starts_with($secret, 'whsec_')) {
            return null;
        }
        $key = base64_decode(substr($secret, strlen('whsec_')), true);
        return ($key === false || $key === '') ? null : $key;
    }

    private static function timeout(): float
    {
        $timeout = defined('RONDO_REVERSE_SYNC_TIMEOUT') ? (float) RONDO_REVERSE_SYNC_TIMEOUT : self::DEFAULT_TIMEOUT;
        return $timeout > 0 ? $timeout : self::DEFAULT_TIMEOUT;
    }

    private static function shutdown_budget(): float
    {
        $budget = defined('RONDO_REVERSE_SYNC_SHUTDOWN_BUDGET') ? (float) RONDO_REVERSE_SYNC_SHUTDOWN_BUDGET : self::DEFAULT_SHUTDOWN_BUDGET;
        return $budget > 0 ? $budget : self::DEFAULT_SHUTDOWN_BUDGET;
    }

    private static function max_attempts(): int
    {
        $max = defined('RONDO_REVERSE_SYNC_MAX_ATTEMPTS') ? (int) RONDO_REVERSE_SYNC_MAX_ATTEMPTS : self::DEFAULT_MAX_ATTEMPTS;
        return max(1, $max);
    }

    /** Exponential backoff: base, 2×base, 4×base, … capped at 12 hours. */
    private static function retry_delay(int $attempts): int
    {
        $base = defined('RONDO_REVERSE_SYNC_RETRY_BASE') ? (int) RONDO_REVERSE_SYNC_RETRY_BASE : self::DEFAULT_RETRY_BASE;
        $base = max(1, $base);
        return (int) min(self::MAX_RETRY_DELAY, $base * (2 ** min(20, max(0, $attempts - 1))));
    }

    private static function new_message_id(): string
    {
        return 'msg_' . bin2hex(random_bytes(16));
    }
}

Rondo_Reverse_Sync::boot();
