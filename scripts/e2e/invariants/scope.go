package invariants

// only narrows what was read to some users: their orders (with those orders' tx_log rows), the
// orders applied to their carts or belonging to them, their cart lines and their ledger rows.
//
// A run that breaks an invariant on purpose (a wrong way, scripts/scenarios/wrong/) leaves its
// damage in the databases for good; narrowed to the users of a later run, the checker judges that
// run alone. What names no user is left out: tx_log rows of orders that do not exist (rolled back,
// or an I4 disagreement) and rejected messages.
func only(c cartSide, o orderSide, users []string) (cartSide, orderSide) {
	keep := make(map[string]bool, len(users))
	for _, u := range users {
		keep[u] = true
	}
	no := orderSide{orders: map[string]*order{}, txlog: map[string]string{}}
	for id, ord := range o.orders {
		if !keep[ord.user] {
			continue
		}
		no.orders[id] = ord
		if outcome, ok := o.txlog[id]; ok {
			no.txlog[id] = outcome
		}
	}
	nc := cartSide{applied: map[string]string{}, lines: map[lineKey]int{}}
	for id, user := range c.applied {
		// An order of these users applied to another user's cart stays: I3 reports it.
		if keep[user] || no.orders[id] != nil {
			nc.applied[id] = user
		}
	}
	for k, q := range c.lines {
		if keep[k.user] {
			nc.lines[k] = q
		}
	}
	for _, ch := range c.changes {
		if keep[ch.user] {
			nc.changes = append(nc.changes, ch)
		}
	}
	return nc, no
}
