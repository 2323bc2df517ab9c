#!/usr/bin/env bash
# First-start initialisation for the mysql service in docker-compose.yml. The official image's
# entrypoint runs it from /docker-entrypoint-initdb.d, only while the data volume is still empty.
#
# One database per service, and one user per service that can touch only its own database:
# order-service cannot read or write carts, cart-service cannot read or write orders. Each service
# applies its own schema at start, so its user may create and alter tables in its database (and
# nothing outside it; no global privileges, no GRANT OPTION).
#
# Passwords come from the container's environment (docker-compose.yml), never from this file or an
# image. The entrypoint sources this file when it is not executable and runs it when it is, so it
# works both ways: it sets no shell options, and a missing password stops the initialisation with
# a message naming it.

: "${MYSQL_ROOT_PASSWORD:?is not set}"
: "${ORDER_DB_PASSWORD:?is not set}"
: "${CART_DB_PASSWORD:?is not set}"

# sql_string prints a value as a MySQL string literal (backslashes and single quotes escaped), so a
# password with any characters in it cannot break the statement.
sql_string() {
	local s=${1//\\/\\\\}
	printf "'%s'" "${s//\'/\'\'}"
}

# The temporary server the entrypoint starts for this step listens only on its Unix socket, and the
# root password is already set.
mysql --protocol=socket -uroot -p"${MYSQL_ROOT_PASSWORD}" <<SQL
CREATE DATABASE IF NOT EXISTS orders;
CREATE DATABASE IF NOT EXISTS carts;

CREATE USER IF NOT EXISTS 'order_svc'@'%' IDENTIFIED BY $(sql_string "${ORDER_DB_PASSWORD}");
GRANT ALL PRIVILEGES ON orders.* TO 'order_svc'@'%';

CREATE USER IF NOT EXISTS 'cart_svc'@'%' IDENTIFIED BY $(sql_string "${CART_DB_PASSWORD}");
GRANT ALL PRIVILEGES ON carts.* TO 'cart_svc'@'%';
SQL
