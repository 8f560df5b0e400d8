<?php
/**
 * Plugin Name: Rondo Club person emulation (tests only)
 * Description: The `person` post type and an `acf` REST field shaped like Rondo Club's, stored the
 *              way ACF stores it, for testing without ACF. Never install this on a real site.
 *
 * ACF exposes its fields through `register_rest_field()` with get/update callbacks over post meta,
 * which is what this file does, so the hook order of a REST save is the same as on Rondo Club:
 * `save_post` (old values) → the `acf` update callback writes meta → `wp_after_insert_post`.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

final class Rondo_Test_Person
{
    /** Field name => ACF field type (repeaters: their sub-fields). */
    public const FIELDS = [
        'first_name'          => 'text',
        'last_name'           => 'text',
        'nickname'            => 'text',
        'knvb-id'             => 'text',
        'contact_info'        => ['contact_type', 'contact_label', 'contact_value'],
        'email_1'             => 'text',
        'email_2'             => 'text',
        'mobile_1'            => 'text',
        'mobile_2'            => 'text',
        'telephone_1'         => 'text',
        'telephone_2'         => 'text',
        'addresses'           => ['address_label', 'street_name', 'house_number', 'house_number_addition', 'postal_code', 'city', 'country', 'country_code'],
        'datum-vog'           => 'date_picker',
        'freescout-id'        => 'number',
        'financiele-blokkade' => 'true_false',
        'datum-overlijden'    => 'date_picker',
        'former_member'       => 'true_false',
    ];

    /** Where a test person's webhooks go (each test runs its own receiver). */
    public const RECEIVER_META = '_rrs_test_receiver';

    public static function boot(): void
    {
        add_action('init', [self::class, 'register_post_type']);
        add_action('rest_api_init', [self::class, 'register_rest_fields']);
        add_filter('rondo_reverse_sync_url', [self::class, 'receiver_url'], 10, 2);
        // The classic edit screen, where meta boxes (the snippet's "Sportlink" box) render on the
        // server: the screenshots show the box without waiting for the block editor's scripts.
        add_filter('use_block_editor_for_post_type', static fn ($use, $type) => $type === 'person' ? false : $use, 10, 2);
    }

    public static function register_post_type(): void
    {
        register_post_type('person', [
            'label'        => 'People',
            'public'       => true,
            'show_in_rest' => true,
            'rest_base'    => 'people',
            'supports'     => ['title', 'editor', 'custom-fields', 'revisions'],
        ]);
    }

    public static function register_rest_fields(): void
    {
        register_rest_field('person', 'acf', [
            'get_callback'    => [self::class, 'get_acf'],
            'update_callback' => [self::class, 'update_acf'],
            'schema'          => ['type' => 'object', 'context' => ['view', 'edit', 'embed']],
        ]);
        register_rest_field('person', 'rrs_test_receiver', [
            'get_callback'    => static fn (array $post): string => (string) get_post_meta((int) $post['id'], self::RECEIVER_META, true),
            'update_callback' => static function ($value, \WP_Post $post): bool {
                update_post_meta($post->ID, self::RECEIVER_META, (string) $value);
                return true;
            },
            'schema'          => ['type' => 'string', 'context' => ['view', 'edit']],
        ]);
    }

    public static function receiver_url(string $url, int $post_id): string
    {
        $receiver = (string) get_post_meta($post_id, self::RECEIVER_META, true);
        return $receiver !== '' ? $receiver : $url;
    }

    /** @param array<string, mixed> $post */
    public static function get_acf(array $post): array
    {
        $id  = (int) $post['id'];
        $out = [];
        foreach (self::FIELDS as $name => $type) {
            $raw = get_post_meta($id, $name, true);
            if (is_array($type)) {
                $rows = [];
                for ($i = 0; $i < (int) $raw; $i++) {
                    $row = [];
                    foreach ($type as $sub) {
                        $row[$sub] = (string) get_post_meta($id, "{$name}_{$i}_{$sub}", true);
                    }
                    $rows[] = $row;
                }
                $out[$name] = $rows;
                continue;
            }
            $out[$name] = match ($type) {
                'true_false'  => $raw === '1',
                'number'      => is_numeric($raw) ? $raw + 0 : null,
                'date_picker' => preg_match('/^(\d{4})(\d{2})(\d{2})$/', (string) $raw, $m) === 1 ? "{$m[1]}-{$m[2]}-{$m[3]}" : null,
                default       => $raw === '' ? null : (string) $raw,
            };
        }
        return $out;
    }

    /** Writes the given fields the way ACF stores them (dates as Ymd, repeaters as count + cells). */
    public static function update_acf($value, \WP_Post $post): bool|\WP_Error
    {
        if (!is_array($value)) {
            return new \WP_Error('rest_invalid_acf', 'acf must be an object', ['status' => 400]);
        }
        foreach ($value as $name => $new) {
            if (!isset(self::FIELDS[$name])) {
                continue;
            }
            $type = self::FIELDS[$name];
            if (is_array($type)) {
                self::update_repeater($post->ID, $name, $type, is_array($new) ? array_values($new) : []);
                continue;
            }
            $stored = match ($type) {
                'true_false'  => $new ? '1' : '0',
                'date_picker' => is_string($new) ? str_replace('-', '', $new) : '',
                default       => $new === null ? '' : (string) $new,
            };
            update_post_meta($post->ID, $name, $stored);
        }
        return true;
    }

    /**
     * @param list<string> $subs
     * @param list<mixed>  $rows
     */
    private static function update_repeater(int $post_id, string $name, array $subs, array $rows): void
    {
        $old = (int) get_post_meta($post_id, $name, true);
        foreach ($rows as $i => $row) {
            foreach ($subs as $sub) {
                $cell = is_array($row) && isset($row[$sub]) ? (string) $row[$sub] : '';
                update_post_meta($post_id, "{$name}_{$i}_{$sub}", $cell);
            }
        }
        for ($i = count($rows); $i < $old; $i++) {
            foreach ($subs as $sub) {
                delete_post_meta($post_id, "{$name}_{$i}_{$sub}");
            }
        }
        update_post_meta($post_id, $name, (string) count($rows));
    }
}

Rondo_Test_Person::boot();
