<?php
/**
 * Installs WordPress non-interactively (idempotent) and creates the test users with application
 * passwords. Usage: php install.php HOST:PORT CONFIG_NAME CREDENTIALS_FILE
 * Writes KEY=VALUE lines to CREDENTIALS_FILE (only when it does not exist yet: an application
 * password can be read only when it is created).
 */

declare(strict_types=1);

[$_, $host, $config, $credentials_file] = $argv + [null, null, null, null];
if ($host === null || $config === null || $credentials_file === null) {
    fwrite(STDERR, "usage: php install.php HOST:PORT CONFIG_NAME CREDENTIALS_FILE\n");
    exit(2);
}

$_SERVER['HTTP_HOST']        = $host;
$_SERVER['SERVER_NAME']      = explode(':', $host)[0];
$_SERVER['REQUEST_URI']      = '/';
$_SERVER['WORDPRESS_CONFIG'] = $config;

define('WP_INSTALLING', true);

// No mail on this machine: the pluggable notification is replaced before WordPress loads its own.
function wp_new_blog_notification($blog_title, $blog_url, $user_id, $password) {}

require '/usr/share/wordpress/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

if (!is_blog_installed()) {
    $result = wp_install('Rondo Club (tests)', 'admin', 'admin@example.org', false, '', wp_generate_password(24));
    if (is_wp_error($result)) {
        fwrite(STDERR, 'wp_install failed: ' . $result->get_error_message() . "\n");
        exit(1);
    }
    update_option('permalink_structure', '/%postname%/');
    delete_option('rewrite_rules');
}

if (is_file($credentials_file)) {
    exit(0);
}

$users = [
    'ADMIN'     => ['admin', 'administrator'],
    'VOLUNTEER' => ['volunteer', 'editor'],
    'SYNC'      => ['rondo-sync', 'editor'],
];
$lines = [];
foreach ($users as $key => [$login, $role]) {
    $user = get_user_by('login', $login);
    if (!$user) {
        $id = wp_insert_user([
            'user_login' => $login,
            'user_email' => $login . '@example.org',
            'user_pass'  => wp_generate_password(24),
            'role'       => $role,
        ]);
        if (is_wp_error($id)) {
            fwrite(STDERR, "could not create user $login: " . $id->get_error_message() . "\n");
            exit(1);
        }
        $user = get_user_by('id', $id);
    }
    $created = WP_Application_Passwords::create_new_application_password($user->ID, ['name' => 'tests ' . microtime(true)]);
    if (is_wp_error($created)) {
        fwrite(STDERR, "could not create an application password for $login: " . $created->get_error_message() . "\n");
        exit(1);
    }
    $lines[] = "WP_{$key}_USER={$login}";
    $lines[] = "WP_{$key}_APP_PASSWORD={$created[0]}";
}
file_put_contents($credentials_file, implode("\n", $lines) . "\n");
chmod($credentials_file, 0600);
