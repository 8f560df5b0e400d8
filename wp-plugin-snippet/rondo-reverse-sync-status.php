<?php
/**
 * Plugin Name: Rondo Reverse Sync status
 * Description: Shows on a person's edit screen what became of their edits in Sportlink, and on the dashboard what needs attention.
 * Version:     1.0.0
 * Requires PHP: 8.0
 * License:     MIT
 *
 * Drop this file into wp-content/mu-plugins/ next to rondo-reverse-sync.php and set the service's
 * read-only token in wp-config.php (see README.md):
 *
 *   define('RONDO_REVERSE_SYNC_READ_TOKEN', '...');   // the service's admin.read_token
 *
 * It reads the service's API server-side (`GET /api/member-status/{knvb_id}` and
 * `GET /api/member-status`) with that token, a short timeout and a small cache: when the service
 * is unreachable the box says so, and the edit screen is slowed by at most the timeout, once per
 * cache period. Texts follow the WordPress locale (Dutch for nl_*, English otherwise); a site
 * translation of the text domain `rondo-reverse-sync` takes precedence.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

final class Rondo_Reverse_Sync_Status
{
    public const TEXT_DOMAIN = 'rondo-reverse-sync';
    public const BOX_ID      = 'rondo-reverse-sync-status';
    public const WIDGET_ID   = 'rondo-reverse-sync-attention';
    private const CACHE_PREFIX    = 'rrs_status_';
    private const DEFAULT_TIMEOUT = 1.5;
    private const DEFAULT_CACHE   = 30;

    /** Tracked field (the service's name) => its label, in English (translated below). */
    private const FIELD_LABELS = [
        'email'                 => 'E-mail',
        'email2'                => 'Second e-mail',
        'mobile'                => 'Mobile',
        'mobile2'               => 'Second mobile',
        'phone'                 => 'Phone',
        'phone2'                => 'Second phone',
        'datum_vog'             => 'VOG date',
        'freescout_id'          => 'FreeScout id',
        'financiele_blokkade'   => 'Financial block',
        'street_name'           => 'Street',
        'house_number'          => 'House number',
        'house_number_addition' => 'Addition',
        'postal_code'           => 'Postal code',
        'city'                  => 'City',
        'country_code'          => 'Country',
    ];

    /** English text => Dutch. Every text the box and the widget show is here. */
    private const DUTCH = [
        'Sportlink'                                                 => 'Sportlink',
        'Sportlink: needs attention'                                => 'Sportlink: aandacht nodig',
        'E-mail'                                                    => 'E-mail',
        'Second e-mail'                                             => 'Tweede e-mail',
        'Mobile'                                                    => 'Mobiel',
        'Second mobile'                                             => 'Tweede mobiel',
        'Phone'                                                     => 'Telefoon',
        'Second phone'                                              => 'Tweede telefoon',
        'VOG date'                                                  => 'Datum VOG',
        'FreeScout id'                                              => 'FreeScout-id',
        'Financial block'                                           => 'Financiële blokkade',
        'Street'                                                    => 'Straat',
        'House number'                                              => 'Huisnummer',
        'Addition'                                                  => 'Toevoeging',
        'Postal code'                                               => 'Postcode',
        'City'                                                      => 'Plaats',
        'Country'                                                   => 'Land',
        'Waiting to be written to Sportlink.'                       => 'Wacht op verwerking in Sportlink.',
        'Waiting: the last try failed; next try %s.'                => 'Wacht: de laatste poging mislukte; volgende poging %s.',
        'In Sportlink since %s (verified).'                         => 'In Sportlink sinds %s (gecontroleerd).',
        'Sportlink refused it: “%s”'                                => 'Sportlink weigerde het: „%s”',
        'Correct the value here and save; the corrected value is sent again.' => 'Verbeter de waarde hier en sla op; de verbeterde waarde wordt opnieuw doorgegeven.',
        'Could not be written to Sportlink; the administrator has been told.' => 'Kon niet in Sportlink worden gezet; de beheerder is gewaarschuwd.',
        'Not written: a former member in Sportlink.'                => 'Niet doorgegeven: oud-lid in Sportlink.',
        'Not written: deceased member.'                             => 'Niet doorgegeven: overleden lid.',
        'Not written: replaced by a newer edit.'                    => 'Niet doorgegeven: vervangen door een nieuwere wijziging.',
        'Not written: Sportlink has a newer value, which the next sync from Sportlink brings here.' => 'Niet doorgegeven: Sportlink heeft een nieuwere waarde; de volgende synchronisatie vanuit Sportlink zet die hier.',
        'Not written to Sportlink.'                                 => 'Niet doorgegeven aan Sportlink.',
        'No recent edits to send to Sportlink.'                     => 'Geen recente wijzigingen voor Sportlink.',
        'Not a Sportlink member (no KNVB id).'                      => 'Geen Sportlink-lid (geen KNVB-id).',
        'The Sportlink status is unavailable right now.'            => 'De Sportlink-status is nu niet beschikbaar.',
        'The Sportlink status is not configured (RONDO_REVERSE_SYNC_READ_TOKEN).' => 'De Sportlink-status is niet ingesteld (RONDO_REVERSE_SYNC_READ_TOKEN).',
        'Waiting'                                                   => 'Wachtend',
        'Retrying'                                                  => 'Opnieuw proberen',
        'Refused by Sportlink'                                      => 'Geweigerd door Sportlink',
        'Failed'                                                    => 'Mislukt',
        'Sportlink newer (last %d days)'                            => 'Sportlink nieuwer (laatste %d dagen)',
        'Nothing needs attention.'                                  => 'Niets vraagt aandacht.',
        'Open the operator page'                                    => 'Open de beheerpagina',
    ];

    public static function boot(): void
    {
        add_action('add_meta_boxes', [self::class, 'add_box'], 10, 2);
        add_action('wp_dashboard_setup', [self::class, 'add_widget']);
    }

    // ---------------------------------------------------------------- texts

    public static function t(string $english): string
    {
        $translated = __($english, self::TEXT_DOMAIN);
        if ($translated !== $english) {
            return $translated;
        }
        $locale = function_exists('determine_locale') ? determine_locale() : get_locale();
        if (str_starts_with((string) $locale, 'nl') && isset(self::DUTCH[$english])) {
            return self::DUTCH[$english];
        }
        return $english;
    }

    private static function dutch(): bool
    {
        $locale = function_exists('determine_locale') ? determine_locale() : get_locale();
        return str_starts_with((string) $locale, 'nl');
    }

    /** A time from the API (RFC 3339) in the site's time zone, in the locale's usual form. */
    private static function when(?string $rfc3339): string
    {
        $timestamp = $rfc3339 !== null ? strtotime($rfc3339) : false;
        if ($timestamp === false) {
            return '?';
        }
        return wp_date(self::dutch() ? 'j-n-Y H:i' : 'Y-m-d H:i', $timestamp) ?: '?';
    }

    // ---------------------------------------------------------------- reading the service

    /** The service's base URL (no trailing slash), for a person's box or (post 0) the widget. */
    public static function base_url(int $post_id): ?string
    {
        if (defined('RONDO_REVERSE_SYNC_API_URL') && (string) RONDO_REVERSE_SYNC_API_URL !== '') {
            return rtrim((string) RONDO_REVERSE_SYNC_API_URL, '/');
        }
        if (!defined('RONDO_REVERSE_SYNC_URL')) {
            return null;
        }
        $webhook = (string) apply_filters('rondo_reverse_sync_url', RONDO_REVERSE_SYNC_URL, $post_id);
        $base    = preg_replace('#/webhooks/rondo-club/?$#', '', $webhook);
        return is_string($base) && $base !== '' ? rtrim($base, '/') : null;
    }

    private static function token(): ?string
    {
        return defined('RONDO_REVERSE_SYNC_READ_TOKEN') && (string) RONDO_REVERSE_SYNC_READ_TOKEN !== ''
            ? (string) RONDO_REVERSE_SYNC_READ_TOKEN
            : null;
    }

    private static function timeout(): float
    {
        $timeout = defined('RONDO_REVERSE_SYNC_STATUS_TIMEOUT') ? (float) RONDO_REVERSE_SYNC_STATUS_TIMEOUT : self::DEFAULT_TIMEOUT;
        return max(0.1, min(10.0, $timeout));
    }

    private static function cache_seconds(): int
    {
        $seconds = defined('RONDO_REVERSE_SYNC_STATUS_CACHE') ? (int) RONDO_REVERSE_SYNC_STATUS_CACHE : self::DEFAULT_CACHE;
        return max(0, min(3600, $seconds));
    }

    /**
     * `GET {base}{path}` with the read-only token: the decoded JSON, or null when the service
     * could not be asked or did not answer 200 (cached like an answer, so a service that is
     * down costs the timeout once per cache period).
     *
     * @return ?array<string, mixed>
     */
    public static function fetch(string $base, string $path): ?array
    {
        $token = self::token();
        if ($token === null) {
            return null;
        }
        $url    = $base . $path;
        $key    = self::CACHE_PREFIX . md5($url);
        $ttl    = self::cache_seconds();
        $cached = $ttl > 0 ? get_transient($key) : false;
        if (is_array($cached) && array_key_exists('data', $cached)) {
            return is_array($cached['data']) ? $cached['data'] : null;
        }
        $response = wp_remote_get($url, [
            'timeout'     => self::timeout(),
            'redirection' => 0,
            'user-agent'  => 'rondo-reverse-sync-snippet/1.0',
            'headers'     => ['authorization' => 'Bearer ' . $token, 'accept' => 'application/json'],
        ]);
        $data = null;
        if (is_wp_error($response)) {
            // The message names the host and the failure, never the token.
            error_log('rondo-reverse-sync: status unavailable: ' . $response->get_error_message());
        } elseif ((int) wp_remote_retrieve_response_code($response) !== 200) {
            error_log('rondo-reverse-sync: status unavailable: HTTP ' . (int) wp_remote_retrieve_response_code($response));
        } else {
            $decoded = json_decode((string) wp_remote_retrieve_body($response), true);
            $data    = is_array($decoded) ? $decoded : null;
        }
        if ($ttl > 0) {
            set_transient($key, ['data' => $data], $ttl);
        }
        return $data;
    }

    // ---------------------------------------------------------------- the box on a person

    /** @param mixed $post */
    public static function add_box(string $post_type, $post = null): void
    {
        if ($post_type !== 'person') {
            return;
        }
        add_meta_box(self::BOX_ID, self::t('Sportlink'), [self::class, 'render_box'], 'person', 'side', 'high');
    }

    public static function render_box(\WP_Post $post): void
    {
        echo self::box_html((int) $post->ID); // phpcs:ignore WordPress.Security.EscapeOutput -- escaped in box_html
    }

    /** The box's HTML for a person; every text and value escaped. */
    public static function box_html(int $post_id): string
    {
        $knvb_id = trim((string) get_post_meta($post_id, 'knvb-id', true));
        if ($knvb_id === '') {
            return self::paragraph('Not a Sportlink member (no KNVB id).', 'none');
        }
        if (self::token() === null) {
            return self::paragraph('The Sportlink status is not configured (RONDO_REVERSE_SYNC_READ_TOKEN).', 'unavailable');
        }
        $base   = self::base_url($post_id);
        $status = $base !== null ? self::fetch($base, '/api/member-status/' . rawurlencode($knvb_id)) : null;
        if ($status === null || !isset($status['fields']) || !is_array($status['fields'])) {
            return self::paragraph('The Sportlink status is unavailable right now.', 'unavailable');
        }
        if ($status['fields'] === []) {
            return self::paragraph('No recent edits to send to Sportlink.', 'none');
        }
        $html = '<ul class="rrs-status">';
        foreach ($status['fields'] as $field) {
            if (is_array($field)) {
                $html .= self::field_html($field);
            }
        }
        return $html . '</ul>';
    }

    private static function paragraph(string $english, string $state): string
    {
        return '<p class="rrs-status" data-rrs-state="' . esc_attr($state) . '">' . esc_html(self::t($english)) . '</p>';
    }

    /** @param array<string, mixed> $field */
    private static function field_html(array $field): string
    {
        $name  = (string) ($field['field'] ?? '');
        $label = isset(self::FIELD_LABELS[$name]) ? self::t(self::FIELD_LABELS[$name]) : $name;
        $state = (string) ($field['state'] ?? '');
        $lines = [];
        switch ($state) {
            case 'verified':
                $lines[] = sprintf(self::t('In Sportlink since %s (verified).'), self::when($field['verified_at'] ?? null));
                break;
            case 'waiting':
                $lines[] = ((int) ($field['attempts'] ?? 0)) > 0 && isset($field['next_attempt_at'])
                    ? sprintf(self::t('Waiting: the last try failed; next try %s.'), self::when($field['next_attempt_at']))
                    : self::t('Waiting to be written to Sportlink.');
                break;
            case 'refused':
                $lines[] = sprintf(self::t('Sportlink refused it: “%s”'), (string) ($field['sportlink_message'] ?? ''));
                $lines[] = self::t('Correct the value here and save; the corrected value is sent again.');
                break;
            case 'failed':
                $lines[] = self::t('Could not be written to Sportlink; the administrator has been told.');
                break;
            default:
                $lines[] = self::t(match ((string) ($field['reason'] ?? '')) {
                    'former_member'  => 'Not written: a former member in Sportlink.',
                    'deceased'       => 'Not written: deceased member.',
                    'superseded'     => 'Not written: replaced by a newer edit.',
                    'sportlink_newer' => 'Not written: Sportlink has a newer value, which the next sync from Sportlink brings here.',
                    default          => 'Not written to Sportlink.',
                });
        }
        $html = '<li data-rrs-field="' . esc_attr($name) . '" data-rrs-state="' . esc_attr($state) . '">'
            . '<strong>' . esc_html($label) . '</strong>: <code>' . esc_html((string) ($field['value'] ?? '')) . '</code>';
        foreach ($lines as $line) {
            $html .= '<br>' . esc_html($line);
        }
        return $html . '</li>';
    }

    // ---------------------------------------------------------------- the dashboard widget

    public static function add_widget(): void
    {
        if (!current_user_can('edit_posts')) {
            return;
        }
        wp_add_dashboard_widget(self::WIDGET_ID, self::t('Sportlink: needs attention'), [self::class, 'render_widget']);
    }

    public static function render_widget(): void
    {
        echo self::widget_html(); // phpcs:ignore WordPress.Security.EscapeOutput -- escaped in widget_html
    }

    public static function widget_html(): string
    {
        if (self::token() === null) {
            return self::paragraph('The Sportlink status is not configured (RONDO_REVERSE_SYNC_READ_TOKEN).', 'unavailable');
        }
        $base   = self::base_url(0);
        $counts = $base !== null ? self::fetch($base, '/api/member-status') : null;
        if ($counts === null) {
            return self::paragraph('The Sportlink status is unavailable right now.', 'unavailable');
        }
        $rows = [
            'refused'        => self::t('Refused by Sportlink'),
            'failed'         => self::t('Failed'),
            'retrying'       => self::t('Retrying'),
            'waiting'        => self::t('Waiting'),
            'conflicts_lost' => sprintf(self::t('Sportlink newer (last %d days)'), (int) ($counts['conflict_days'] ?? 7)),
        ];
        $html  = '<ul class="rrs-attention">';
        $total = 0;
        foreach ($rows as $key => $label) {
            $n = (int) ($counts[$key] ?? 0);
            $total += $key === 'waiting' ? 0 : $n;
            $html  .= '<li data-rrs-count="' . esc_attr($key) . '">' . esc_html($label) . ': <strong>' . esc_html((string) $n) . '</strong></li>';
        }
        $html .= '</ul>';
        if ($total === 0) {
            $html .= '<p>' . esc_html(self::t('Nothing needs attention.')) . '</p>';
        }
        $operator = defined('RONDO_REVERSE_SYNC_OPERATOR_URL') && (string) RONDO_REVERSE_SYNC_OPERATOR_URL !== ''
            ? (string) RONDO_REVERSE_SYNC_OPERATOR_URL
            : $base . '/';
        return $html . '<p><a href="' . esc_url($operator) . '">' . esc_html(self::t('Open the operator page')) . '</a></p>';
    }
}

Rondo_Reverse_Sync_Status::boot();
