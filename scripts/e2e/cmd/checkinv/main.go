// Command checkinv reads the orders and carts databases and reports the invariants of docs/design.md
// (I1 to I4) as counts, naming each offending order, user and SKU. It exits 1 if one is violated,
// 2 if it could not check. Run it against a running suite after any experiment:
//
//	go run ./scripts/e2e/cmd/checkinv                      # local servers (scripts/infra-up.sh)
//	ORDERS_DSN=... CARTS_DSN=... go run ./scripts/e2e/cmd/checkinv -wait 60s
//	go run ./scripts/e2e/cmd/checkinv -users u1,u2           # only these users' orders and carts
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"rmqtx/e2e/invariants"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("checkinv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for in-flight orders to reach the cart before judging I1")
	users := fs.String("users", "", "comma-separated user IDs: judge only their orders and carts (empty: everything)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var only []string
	for _, u := range strings.Split(*users, ",") {
		if u = strings.TrimSpace(u); u != "" {
			only = append(only, u)
		}
	}
	dsn := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	ordersDSN := dsn("ORDERS_DSN", "rmqtx:rmqtx@tcp(127.0.0.1:3306)/orders")
	cartsDSN := dsn("CARTS_DSN", "rmqtx:rmqtx@tcp(127.0.0.1:3306)/carts")

	ordersDB, err := sql.Open("mysql", ordersDSN)
	if err != nil {
		fmt.Fprintln(stderr, "checkinv: ORDERS_DSN:", err)
		return 2
	}
	defer ordersDB.Close()
	cartsDB, err := sql.Open("mysql", cartsDSN)
	if err != nil {
		fmt.Fprintln(stderr, "checkinv: CARTS_DSN:", err)
		return 2
	}
	defer cartsDB.Close()

	ctx, cancel := context.WithTimeout(context.Background(), *wait+30*time.Second)
	defer cancel()
	r, err := invariants.WaitSettled(ctx, ordersDB, cartsDB, *wait, only...)
	if err != nil {
		fmt.Fprintln(stderr, "checkinv:", err)
		return 2
	}
	fmt.Fprint(stdout, r.String())
	if !r.OK() {
		fmt.Fprintln(stdout, "verdict: VIOLATED")
		return 1
	}
	fmt.Fprintln(stdout, "verdict: all invariants hold")
	return 0
}
