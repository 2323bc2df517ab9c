// The page: fill a cart, place an order, and watch both services' timelines fill in.
//
// Everything goes to order-service, which served this page: its own API (../orders...) and
// cart-service behind its proxy (cart/...). Every half second the page reads the watched order's
// two timelines and the cart, and re-draws what changed. No framework: a few functions that fetch
// JSON and a few that turn it into DOM.
"use strict";

const POLL_MS = 500;
const UNIT_PRICE_CENTS = 999; // every SKU costs the same here; prices are not the point
const ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
const ORDERS_SHOWN = 20; // the newest orders of the user: the first page of GET /orders

// One sentence per step: what it is and why it matters. Steps a service does not know yet are
// shown with their detail only.
const ORDER_STEPS = {
  half_message_stored: {
    title: "Half message stored",
    why: "The broker holds the OrderCreated event but hides it from cart-service until order-service says commit, so the event can never get ahead of the order.",
  },
  local_tx_committed: {
    title: "Local transaction committed",
    why: "One MySQL transaction wrote the order, its items and a tx_log row saying 'committed': the order now exists, and the database alone can say so later.",
  },
  local_tx_rolled_back: {
    title: "Local transaction rolled back",
    why: "Nothing was written, so the half message must be dropped: cart-service will never hear of this order.",
    tone: "bad",
  },
  local_tx_outcome_unknown: {
    title: "Local outcome unknown",
    why: "The answer to COMMIT was lost, so order-service cannot know whether the order exists; it tells the broker 'unknown' rather than guess, and the check-back will read the truth.",
    tone: "warn",
  },
  answer_sent: {
    title: "Answer sent to the broker",
    why: "Commit makes the event visible to cart-service; rollback throws the half message away.",
  },
  answer_withheld: {
    title: "No answer sent",
    why: "The broker got no commit or rollback (a lost packet, a crash, or here a fault), so the event stays invisible until the broker asks.",
    tone: "warn",
  },
  outbox_published: {
    title: "Event published by the outbox relay",
    why: "PLACEMENT=outbox: the event was committed with the order in an outbox row; the relay has handed it to the broker as a normal message and deleted the row. A relay that dies between the two publishes it again, and cart-service sees a duplicate by the order ID.",
  },
  event_sent: {
    title: "Event sent as a plain message",
    why: "A wrong way on purpose: a plain message is visible to cart-service at once and cannot be taken back, whatever becomes of the order.",
    tone: "warn",
  },
  event_not_sent: {
    title: "Event never sent",
    why: "A wrong way on purpose: the order exists, and nothing will ever send its event; the cart keeps the items for ever.",
    tone: "bad",
  },
  event_resent: {
    title: "Event published again, as a new message",
    why: "Fault resend-event: the same order under a second message ID, as an application resend or an outbox relay would publish it. cart-service must see a duplicate by the order ID.",
    tone: "warn",
  },
  check_back: {
    title: "Check-back answered",
    why: "The broker asked a live order-service instance (any one of the group) what became of the order; it answers from tx_log in the database, never from memory, so the answer is right even after a crash.",
  },
};

const CART_STEPS = {
  applied: {
    title: "Applied to the cart",
    why: "In one transaction cart-service inserted the order ID into processed_orders and took the ordered quantities off the cart, then acknowledged the message.",
  },
  duplicate_acknowledged: {
    title: "Duplicate, acknowledged",
    why: "The same event came again (a redelivery or a re-put); its order ID was already in processed_orders, so the cart was left alone: a duplicate is harmless.",
    tone: "warn",
  },
  retry_requested: {
    title: "Retry requested",
    why: "Applying failed for a passing reason and nothing changed; the broker will deliver the message again later.",
    tone: "warn",
  },
  rejected: {
    title: "Rejected",
    why: "The message can never be applied, so it was recorded in rejected_messages and acknowledged instead of being retried for ever.",
    tone: "bad",
  },
};

const state = {
  config: null,
  user: "",
  cart: [],            // [{sku, quantity}] as cart-service has it now
  cartKey: "",         // JSON of cart, to redraw only on change
  cartAsked: 0,        // cart reads started, and the latest one drawn: the polling read and the
  cartDrawn: 0,        // one after a put overlap, and an older answer must not replace a newer one
  toOrder: new Map(),  // sku -> quantity to order, as typed
  watched: null,       // {id, before: [{sku, quantity}] | null, fault}
  placedHere: new Map(), // order ID -> what the HTTP answer was
  seenSteps: new Set(),  // keys of steps already drawn, to mark new ones
  waitingForUnanswered: null, // {knownIDs: Set}: an order got no answer; watch it if it shows up
  orderIDs: new Set(),
  ticks: 0,
};

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// api fetches JSON. It resolves to {status, data}; it rejects only when nothing answered at all.
async function api(method, url, body, headers = {}) {
  const opts = { method, headers: { ...headers } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(url, opts);
  let data = null;
  try {
    data = await resp.json();
  } catch {
    // not JSON (an HTML error page from something in between): status alone says enough
  }
  return { status: resp.status, data };
}

function errorText(data, status) {
  const e = data && data.error;
  if (!e) return `HTTP ${status}`;
  const fields = e.fields ? " (" + Object.entries(e.fields).map(([k, v]) => `${k} ${v}`).join("; ") + ")" : "";
  return e.message + fields;
}

// --- notices -------------------------------------------------------------------------------

const notices = new Map(); // key -> {text, bad}

function notice(key, text, bad = false) {
  if (text) notices.set(key, { text, bad });
  else notices.delete(key);
  const box = $("#notices");
  box.replaceChildren(...[...notices.values()].map((n) => el("p", { class: n.bad ? "bad" : "", text: n.text })));
}

// --- the cart ------------------------------------------------------------------------------

async function refreshCart() {
  if (!state.config || !state.config.cart_connected) return;
  const asked = ++state.cartAsked;
  const { status, data } = await api("GET", `cart/carts/${encodeURIComponent(state.user)}`);
  if (asked < state.cartDrawn) return; // a later read was already drawn
  state.cartDrawn = asked;
  if (status !== 200) {
    notice("cart", `cart-service: ${errorText(data, status)}`, true);
    return;
  }
  notice("cart", "");
  const key = JSON.stringify(data.items);
  if (key === state.cartKey) return;
  state.cartKey = key;
  state.cart = data.items;
  drawCart();
  drawCartAfter();
}

function drawCart() {
  const rows = state.cart.map(({ sku, quantity }) => {
    if (!state.toOrder.has(sku)) state.toOrder.set(sku, 1);
    const input = el("input", {
      type: "number", min: "0", max: "10000", value: String(state.toOrder.get(sku)),
      "aria-label": `Quantity of ${sku} to order`, "data-sku": sku,
      oninput: (e) => state.toOrder.set(sku, Number(e.target.value)),
    });
    return el("tr", { "data-sku": sku },
      el("td", { class: "mono", text: sku }),
      el("td", { class: "qty", text: String(quantity) }),
      el("td", {}, input));
  });
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", { colspan: "3", class: "help", text: "Empty. Put something in it above." })));
  }
  $("#cart-table tbody").replaceChildren(...rows);
}

async function addToCart(ev) {
  ev.preventDefault();
  const sku = $("#sku").value.trim();
  const quantity = Number($("#qty").value);
  if (!setUser($("#user").value.trim())) return;
  const button = $("#add");
  button.disabled = true;
  try {
    // PUT sets the line, so add to what is there.
    const have = (state.cart.find((l) => l.sku === sku) || { quantity: 0 }).quantity;
    const { status, data } = await api("PUT", `cart/carts/${encodeURIComponent(state.user)}/items/${encodeURIComponent(sku)}`,
      { quantity: have + quantity });
    if (status !== 200) {
      notice("cart", `Could not put ${sku} in the cart: ${errorText(data, status)}`, true);
      return;
    }
    notice("cart", "");
    state.cartKey = "";
    await refreshCart();
  } catch (err) {
    notice("cart", `order-service did not answer (${err.message}).`, true);
  } finally {
    button.disabled = false;
  }
}

// --- placing an order ----------------------------------------------------------------------

function say(text, kind) {
  const p = $("#answer");
  p.textContent = text;
  p.dataset.kind = kind;
}

async function placeOrder(ev) {
  ev.preventDefault();
  const items = state.cart
    .map(({ sku, quantity }) => ({ sku, quantity: Math.min(state.toOrder.get(sku) ?? 0, quantity) }))
    .filter((it) => it.quantity > 0)
    .map((it) => ({ ...it, unit_price_cents: UNIT_PRICE_CENTS }));
  if (items.length === 0) {
    say("Nothing to order: put something in the cart and choose how much of it to order.", "warn");
    return;
  }
  const fault = $("#fault").value;
  const before = state.cart.map((l) => ({ ...l }));
  const knownIDs = new Set(state.orderIDs);
  const headers = fault ? { "X-Fault": fault } : {};
  const button = $("#place");
  button.disabled = true;
  say("Placing the order…", "");
  try {
    const { status, data } = await api("POST", "../orders", { user_id: state.user, items }, headers);
    if (status === 201 || status === 202) {
      const id = data.order.order_id;
      state.placedHere.set(id, `answered ${status}`);
      state.toOrder.clear(); // back to 1 of each line once the cart changes
      state.cartKey = "";
      say(status === 201
        ? `201 Created: order ${id} is durable. Now watch its event reach the cart.`
        : `202 Accepted, pending: the commit's outcome is unknown; the broker's check-back will decide, and GET /orders/${id} will tell.`,
      status === 201 ? "ok" : "warn");
      watch(id, before, fault);
    } else {
      // 4xx: nothing was written or sent. 5xx: nothing will ever be delivered; but the order was
      // attempted (500 order_not_placed, 503 broker_unavailable), and the answer names it
      // (error.order_id), so its timeline shows what happened: the local transaction rolled back,
      // and so did its half message.
      const id = data && data.error && data.error.order_id;
      if (id) {
        state.placedHere.set(id, `answered ${status}`);
        say(`${status}: ${errorText(data, status)}. Nothing reaches the cart. Order ${id} was attempted: its timeline below shows why.`, "bad");
        watch(id, before, fault);
      } else {
        say(`${status}: ${errorText(data, status)}. Nothing reaches the cart.`, status >= 500 ? "bad" : "warn");
      }
    }
  } catch (err) {
    // No answer at all: a crash fault point killed the instance mid-request, as asked.
    say("No answer: this order-service instance died mid-request (a crash fault does exactly that). " +
      "Once it is back (compose restarts it; locally, run scripts/suite-up.sh), the page carries on. " +
      "If the order committed, it shows up in the list below and the check-back (answered by any instance) gets it to the cart.",
    "bad");
    state.waitingForUnanswered = { knownIDs, before, fault };
  } finally {
    button.disabled = false;
    refreshOrders();
  }
}

// --- watching one order --------------------------------------------------------------------

function watch(id, before, fault) {
  state.watched = { id, before, fault };
  notice("order-timeline", "");
  notice("cart-timeline", "");
  state.seenSteps.clear();
  $("#watch-id").textContent = id;
  for (const list of [$("#order-steps"), $("#cart-steps")]) {
    list.replaceChildren();
    list.dataset.sig = "";
  }
  drawCartBefore();
  drawCartAfter();
  drawOrders();
  refreshWatched();
}

async function refreshWatched() {
  const w = state.watched;
  if (!w) return;
  const id = encodeURIComponent(w.id);
  const [ord, crt] = await Promise.all([
    api("GET", `../orders/${id}/timeline`),
    state.config.cart_connected ? api("GET", `cart/orders/${id}/timeline`) : Promise.resolve(null),
  ]);
  if (state.watched !== w) return; // another order was picked meanwhile
  // A service that does not answer (cart-service restarting after a crash fault, say) keeps what
  // it showed last: its steps happened all the same.
  if (ord.status === 200) {
    w.orderSteps = ord.data.steps;
    w.outcome = ord.data.outcome;
  } else if (ord.status === 404) {
    w.orderSteps = [];
    w.outcome = "unknown";
  }
  notice("order-timeline", ord.status === 200 || ord.status === 404 ? "" :
    `order-service could not read the order's timeline: ${errorText(ord.data, ord.status)}`, true);
  if (crt && crt.status === 200) {
    w.cartSteps = crt.data.steps;
    w.appliedAt = crt.data.applied_at;
  }
  notice("cart-timeline", !crt || crt.status === 200 ? "" :
    `cart-service does not answer (${errorText(crt.data, crt.status)}); its steps so far stay on the page.`, true);

  const orderSteps = w.orderSteps || [];
  const cartSteps = w.cartSteps || [];
  const origin = orderSteps.length ? Date.parse(orderSteps[0].at) : (cartSteps.length ? Date.parse(cartSteps[0].at) : 0);
  // A step with no instance or message was not recorded but read from the service's own tables
  // (tx_log, processed_orders): its process died before writing it.
  drawSteps("#order-steps", orderSteps, ORDER_STEPS, origin,
    (s) => s.instance ? `by ${s.instance}` : "from the database");
  drawSteps("#cart-steps", cartSteps, CART_STEPS, origin,
    (s) => s.msg_id ? `delivery ${s.reconsume_times + 1} of message …${s.msg_id.slice(-8)}` : "from the database");
  drawOutcome(w.outcome || "unknown", w.appliedAt || null, orderSteps);
}

function drawSteps(sel, steps, known, origin, who) {
  const list = $(sel);
  // Redraw only when something changed, or assistive technology would re-read every step.
  const sig = steps.map((s) => s.step + s.at).join();
  if (list.dataset.sig === sig) return;
  list.dataset.sig = sig;
  list.replaceChildren(...steps.map((s) => {
    const key = `${sel}|${s.step}|${s.at}|${s.msg_id || s.instance}`;
    const isNew = !state.seenSteps.has(key);
    state.seenSteps.add(key);
    const info = known[s.step] || { title: s.step, why: "" };
    return el("li", { class: isNew ? "new" : "", "data-step": s.step, "data-tone": info.tone || "" },
      el("div", { class: "step-head" },
        el("span", { class: "step-name", text: info.title }),
        el("span", { class: "step-time", text: `+${formatMs(Date.parse(s.at) - origin)} · ${who(s)}` })),
      el("p", { class: "step-why", text: info.why }),
      el("p", { class: "step-detail mono", text: s.detail }));
  }));
}

function formatMs(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "0 ms";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function drawOutcome(outcome, appliedAt, orderSteps) {
  const p = $("#outcome");
  let text;
  if (!state.config.timeline) {
    text = "Step recording is off on this instance (TIMELINE=off): the timelines stay empty. The outcome below still comes from the database. ";
  } else {
    text = "";
  }
  switch (outcome) {
    case "committed":
      text += appliedAt
        ? "Done: the order exists, and the cart has been updated exactly once."
        : "The order is committed; its event is visible to cart-service now and on its way.";
      break;
    case "pending":
      text += "Not decided yet: the broker holds the half message, invisible to cart-service, until order-service answers or the broker's check-back asks.";
      break;
    case "rolled_back":
      text += "Rolled back: the order does not exist, and cart-service never hears of it.";
      break;
    default:
      text += orderSteps.length ? "" : "No trace of this order yet.";
  }
  const has = (step) => orderSteps.some((s) => s.step === step);
  if (has("local_tx_committed") && has("check_back") && !has("answer_sent") && !has("answer_withheld")) {
    text += " No answer was recorded: the instance died before sending one, so the broker had to ask.";
  }
  text += brokenOutcome(outcome, appliedAt, orderSteps, has);
  p.textContent = text;
  p.dataset.state = outcome;
  p.dataset.applied = appliedAt ? "yes" : "no";
}

// brokenOutcome names what a wrong placement broke for this order, once it shows: an order whose
// cart never changed, or a cart changed for an order that does not exist.
const NEVER_AFTER_MS = 15000; // the right way reaches the cart within a few seconds, even after a check-back

function brokenOutcome(outcome, appliedAt, orderSteps, has) {
  const c = state.config;
  if (!c.wrong_way) return "";
  const first = orderSteps.length ? Date.parse(orderSteps[0].at) : NaN;
  const old = Number.isFinite(first) && Date.now() - first > NEVER_AFTER_MS;
  if (appliedAt && outcome !== "committed") {
    return ` BROKEN (PLACEMENT=${c.placement}): cart-service took the items off the cart for an order that does not exist, a phantom.`;
  }
  if (outcome === "committed" && !appliedAt && old) {
    const why = c.placement === "save-then-send" && !has("event_sent") ? " Event never sent." : "";
    return ` BROKEN (PLACEMENT=${c.placement}):${why} Cart never updated: the order exists, and its event is lost.`;
  }
  return "";
}

function quantities(lines) {
  return new Map((lines || []).map((l) => [l.sku, l.quantity]));
}

function drawCartTable(sel, lines, compareTo) {
  const rows = [];
  const before = compareTo ? quantities(compareTo) : null;
  const skus = new Set([...(lines || []).map((l) => l.sku), ...(before ? before.keys() : [])]);
  const now = quantities(lines);
  for (const sku of [...skus].sort()) {
    const q = now.get(sku) ?? 0;
    const changed = before && (before.get(sku) ?? 0) !== q;
    rows.push(el("tr", { "data-sku": sku },
      el("td", { class: "mono", text: sku }),
      el("td", { class: changed ? "qty changed" : "qty", text: String(q) })));
  }
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "2", class: "help", text: "empty" })));
  $(sel + " tbody").replaceChildren(...rows);
}

function drawCartBefore() {
  const w = state.watched;
  if (!w || !w.before) {
    const why = w ? "not seen: this order was not placed from this page" : "no order watched yet";
    $("#cart-before tbody").replaceChildren(el("tr", {}, el("td", { colspan: "2", class: "help", text: why })));
    return;
  }
  drawCartTable("#cart-before", w.before, null);
}

function drawCartAfter() {
  const w = state.watched;
  drawCartTable("#cart-after", state.cart, w && w.before);
}

// --- recent orders -------------------------------------------------------------------------

let orders = [];

async function refreshOrders() {
  try {
    const { status, data } = await api("GET", `../orders?user_id=${encodeURIComponent(state.user)}&limit=${ORDERS_SHOWN}`);
    if (status !== 200) return;
    orders = data.orders || [];
  } catch (err) {
    notice("down", `order-service does not answer (${err.message}); retrying every half second.`, true);
    return;
  }
  state.orderIDs = new Set(orders.map((o) => o.order_id));
  const waiting = state.waitingForUnanswered;
  if (waiting) {
    const appeared = orders.find((o) => !waiting.knownIDs.has(o.order_id));
    if (appeared) {
      state.waitingForUnanswered = null;
      state.placedHere.set(appeared.order_id, "no answer: the instance crashed");
      say(`The order that got no answer exists after all: ${appeared.order_id}. Its local transaction had committed; watch the check-back deliver it.`, "warn");
      watch(appeared.order_id, waiting.before, waiting.fault);
      return;
    }
  }
  drawOrders();
}

function drawOrders() {
  $("#orders-empty").hidden = orders.length > 0;
  const rows = orders.map((o) => {
    const watched = state.watched && state.watched.id === o.order_id;
    const items = o.items.map((it) => `${it.quantity} × ${it.sku}`).join(", ");
    const answer = state.placedHere.get(o.order_id);
    return el("tr", { class: watched ? "watched" : "", "data-order": o.order_id },
      el("td", { class: "mono", text: o.order_id }),
      el("td", { text: new Date(o.created_at).toLocaleTimeString() }),
      el("td", { text: items }),
      el("td", { text: o.status + (answer ? ` · ${answer}` : "") }),
      el("td", {}, el("button", {
        type: "button", class: "quiet", text: watched ? "watching" : "Watch",
        "aria-label": `Watch order ${o.order_id}`,
        onclick: () => watch(o.order_id, null, ""),
      })));
  });
  $("#orders-table tbody").replaceChildren(...rows);
}

// --- set-up and the clock ------------------------------------------------------------------

function setUser(user) {
  if (!ID_PATTERN.test(user)) {
    notice("user", "The user ID is 1 to 64 characters of A-Z a-z 0-9 . _ : -", true);
    return false;
  }
  notice("user", "");
  if (user !== state.user) {
    state.user = user;
    state.cartKey = "";
    state.toOrder.clear();
    localStorage.setItem("rmqtx-user", user);
    document.querySelectorAll(".user-name").forEach((n) => { n.textContent = user; });
    $("#user").value = user;
    const u = new URL(location.href);
    u.searchParams.set("user", user);
    history.replaceState(null, "", u);
  }
  return true;
}

function drawConfig() {
  const c = state.config;
  const banner = $("#wrong-way");
  if (c.wrong_way) {
    banner.replaceChildren(
      el("span", { text: "This instance places orders a WRONG way, on purpose: " }),
      el("span", { class: "mono", text: `PLACEMENT=${c.placement}` }),
      el("span", { text: `. ${c.wrong_way}.` }));
    banner.hidden = false;
  }
  const select = $("#fault");
  for (const f of c.fault_points) {
    select.append(el("option", { value: f.header, text: f.header }));
  }
  select.disabled = !c.fault_injection;
  const describe = () => {
    const f = c.fault_points.find((p) => p.header === select.value);
    $("#fault-what").textContent = !c.fault_injection
      ? "Fault injection is off on this instance (start it with FAULT_INJECTION=on to break things on purpose)."
      : f ? f.what : "Nothing breaks: half message, local transaction, commit, delivery.";
  };
  select.addEventListener("change", describe);
  describe();
  notice("cart-config", c.cart_connected ? "" :
    "cart-service is not connected: start order-service with CART_URL set to cart-service's address " +
    "(e.g. CART_URL=http://127.0.0.1:8082). Until then the cart and its timeline stay empty.", true);
  notice("timeline", c.timeline ? "" :
    "Step recording is off on this instance (TIMELINE=off): orders work as usual, the timelines stay empty.");
}

async function tick() {
  state.ticks++;
  try {
    await Promise.all([refreshCart(), refreshWatched()]);
    if (state.ticks % 4 === 0) await refreshOrders();
    notice("down", "");
  } catch (err) {
    notice("down", `order-service does not answer (${err.message}); retrying every half second.`, true);
  } finally {
    setTimeout(tick, POLL_MS);
  }
}

async function start() {
  const fromURL = new URLSearchParams(location.search).get("user");
  const saved = localStorage.getItem("rmqtx-user");
  const fresh = "reader-" + Math.random().toString(16).slice(2, 8);
  setUser([fromURL, saved, fresh].find((u) => u && ID_PATTERN.test(u)));
  $("#add-form").addEventListener("submit", addToCart);
  $("#order-form").addEventListener("submit", placeOrder);
  $("#user").addEventListener("change", (e) => { if (setUser(e.target.value.trim())) refreshOrders(); });
  for (;;) {
    try {
      const { status, data } = await api("GET", "config");
      if (status === 200) {
        state.config = data;
        break;
      }
    } catch {
      // order-service is restarting: try again
    }
    notice("down", "Waiting for order-service…", true);
    await new Promise((r) => setTimeout(r, 1000));
  }
  notice("down", "");
  drawConfig();
  drawCart();
  drawCartBefore();
  await refreshOrders();
  tick();
}

start();
