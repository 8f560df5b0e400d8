<?php
/**
 * Router for PHP's built-in web server in front of Debian's WordPress (tests only).
 *
 * Debian's wp-config.php picks /etc/wordpress/config-$WORDPRESS_CONFIG.php when
 * $_SERVER['WORDPRESS_CONFIG'] is set; the built-in server does not copy the environment into
 * $_SERVER, so this router does. That keeps each test WordPress on its own config file.
 */

$config = getenv('WORDPRESS_CONFIG');
if (is_string($config) && $config !== '') {
    $_SERVER['WORDPRESS_CONFIG'] = $config;
}

$root = rtrim($_SERVER['DOCUMENT_ROOT'], '/');
$path = rawurldecode((string) parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH));
if (str_contains($path, '..')) {
    http_response_code(400);
    return true;
}

// Debian keeps wp-content outside the document root.
if (str_starts_with($path, '/wp-content/')) {
    $file = '/var/lib/wordpress' . $path;
    if (is_file($file) && !str_ends_with($file, '.php')) {
        $types = ['css' => 'text/css', 'js' => 'application/javascript', 'svg' => 'image/svg+xml', 'png' => 'image/png'];
        header('Content-Type: ' . ($types[pathinfo($file, PATHINFO_EXTENSION)] ?? 'application/octet-stream'));
        readfile($file);
        return true;
    }
}

$script = $root . '/index.php';
if ($path !== '/' && is_file($root . $path)) {
    if (!str_ends_with($path, '.php')) {
        return false; // a static file: let the server send it
    }
    $script = $root . $path;
} elseif (is_dir($root . $path) && is_file($root . rtrim($path, '/') . '/index.php')) {
    $script = $root . rtrim($path, '/') . '/index.php';
}

$_SERVER['SCRIPT_FILENAME'] = $script;
$_SERVER['SCRIPT_NAME']     = substr($script, strlen($root));
$_SERVER['PHP_SELF']        = $_SERVER['SCRIPT_NAME'];
chdir(dirname($script));
require $script;
