package main

// Filling the carts before the run.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// fillCarts puts every SKU of every user's cart at the largest quantity cart-service accepts, so
// no order of the run empties a line.
func fillCarts(ctx context.Context, client *http.Client, c config, users []string) error {
	type job struct{ user, sku string }
	jobs := make(chan job)
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, c.cart+"/carts/"+j.user+"/items/"+j.sku,
					strings.NewReader(`{"quantity":10000}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("PUT %s: %s", req.URL, resp.Status)
					}
				}
				if err != nil {
					select {
					case errc <- fmt.Errorf("fill carts: %w", err):
					default:
					}
				}
			}
		})
	}
	for _, u := range users {
		for s := range c.skus {
			jobs <- job{u, sku(s)}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

func sku(i int) string { return fmt.Sprintf("SKU-%02d", i) }
