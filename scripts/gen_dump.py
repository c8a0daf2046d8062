#!/usr/bin/env python3
"""Deterministic generator of two pg_dump-like plain-text dumps for benchmarks.

Writes NIGHT1 (a ~SIZE_MB MB dump: pg_dump header, CREATE TABLE DDL, then one
COPY block per table, then constraints and indexes) and NIGHT2, the "next
night" of the same database:

  * a tenth of the tables are touched: in each, a fifth of the rows are
    updated; as PostgreSQL does, an updated row leaves its place and the new
    version is written at the end of the table (so it appears at the end of
    the table's COPY block);
  * every table gets 2 % new rows appended;
  * sequence values (setval) follow.

The data is meant to compress like real data (zstd -3 roughly 3-5x): ids,
timestamps, names, emails, free text drawn from a Zipf-distributed word list,
amounts, small JSON objects, booleans, \\N nulls, uuids, IP addresses.

Python 3 standard library only. Same --seed and --size-mb give byte-identical
output.

Usage: gen_dump.py --size-mb 1100 --seed 42 NIGHT1 NIGHT2 [--manifest FILE]
"""

import argparse
import json
import random
import sys
import time

MB = 1_000_000

COMMON_WORDS = """
the of and to in is you that it he was for on are as with his they at be this
have from or one had by word but not what all were we when your can said there
use an each which she do how their if will up other about out many then them
these so some her would make like him into time has look two more write go see
number no way could people my than first water been call who oil its now find
long down day did get come made may part order account customer invoice payment
shipping delivery product price discount refund request support ticket issue
update status pending active closed error warning user admin report daily weekly
monthly quarterly service server database backup restore network latency timeout
retry failed success checkout cart session login logout password reset email
address phone street city country region zip code billing plan subscription trial
upgrade downgrade cancel renew contract agreement terms policy privacy security
review rating comment reply thread message notification reminder schedule meeting
calendar event task project milestone deadline team member owner manager employee
department budget expense revenue profit margin forecast target quota sales lead
opportunity pipeline stage won lost contact company vendor supplier warehouse
inventory stock item quantity unit batch lot serial shipment carrier tracking
label package box pallet container return exchange warranty repair replacement
please thanks regards hello dear team note see attached confirm asap soon today
tomorrow yesterday morning evening night week month year quick small large new
old good great best better bad worse worst first last next previous final total
net gross tax fee charge credit debit balance transfer deposit withdrawal loan
interest rate fixed variable annual monthly customer's client's vendor's we've
don't can't won't it's that's there's here's let's i'm you're they're isn't
""".split()

SYLLABLES = ("ka ra mo li se tu na pe vi do ga re shi lo mi ta ne ko sa ru be di "
             "fa go hu je ki la ma no pa qui ri so te ul va we xi yo za an el in "
             "or us ber con dis ent ion ish ment ness pro ter tion ver").split()

FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth "
         "William Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen "
         "Christopher Lisa Daniel Nancy Matthew Betty Anthony Margaret Mark Sandra "
         "Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle "
         "Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah "
         "Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia "
         "Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen "
         "Brenda Larry Pamela Justin Emma Scott Nicole Brandon Helen Benjamin Samantha "
         "Samuel Katherine Gregory Christine Alexander Debra Frank Rachel Patrick "
         "Carolyn Raymond Janet Jack Catherine Dennis Maria Jerry Heather Tyler Diane "
         "Aaron Ruth Jose Julie Adam Olivia Nathan Joyce Henry Virginia Douglas Victoria "
         "Zachary Kelly Peter Lauren Kyle Christina Ethan Joan Walter Evelyn Noah Judith "
         "Jeremy Megan Christian Andrea Keith Cheryl Roger Hannah Terry Jacqueline "
         "Lukas Sofia Mateo Camila Hiroshi Yuki Wei Mei Arjun Priya Olga Dmitri "
         "Fatima Omar Chloe Louis Lena Jonas Ingrid Lars Marta Pablo Lucia").split()

LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez "
        "Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin "
        "Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker "
        "Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson "
        "Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans "
        "Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy "
        "Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard "
        "Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray "
        "Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross "
        "Foster Jimenez Mueller Schmidt Schneider Fischer Weber Meyer Wagner Becker "
        "Schulz Hoffmann Rossi Russo Ferrari Esposito Bianchi Romano Colombo Dubois "
        "Durand Lefebvre Moreau Laurent Tanaka Suzuki Takahashi Watanabe Wang Li "
        "Zhang Liu Chen Yang Singh Kumar Sharma Ivanov Petrov Novak Kowalski Silva "
        "Santos Oliveira Pereira Costa Jensen Hansen Nielsen Larsen Johansson").split()

DOMAINS = ("gmail.com yahoo.com hotmail.com outlook.com icloud.com proton.me "
           "example.com example.org acme.io globex.com initech.com umbrella.co "
           "hooli.xyz wayne-enterprises.com stark.industries mail.de web.de "
           "orange.fr libero.it yandex.ru qq.com naver.com").split()

CITIES = ("Berlin Hamburg Munich Paris Lyon London Manchester Madrid Barcelona Rome "
          "Milan Vienna Zurich Amsterdam Brussels Copenhagen Stockholm Oslo Helsinki "
          "Warsaw Prague Budapest Lisbon Dublin Athens Toronto Montreal Chicago Boston "
          "Seattle Austin Denver Portland Atlanta Miami Tokyo Osaka Seoul Singapore "
          "Sydney Melbourne Auckland Mumbai Bangalore Sao_Paulo Mexico_City").split()
COUNTRIES = "DE FR GB ES IT AT CH NL BE DK SE NO FI PL CZ HU PT IE GR CA US JP KR SG AU NZ IN BR MX".split()
CURRENCIES = "EUR USD GBP CHF SEK NOK DKK PLN JPY AUD CAD".split()
STATUSES = {
    "order": "pending paid shipped delivered cancelled refunded".split(),
    "ticket": "open in_progress waiting resolved closed".split(),
    "generic": "active inactive suspended deleted".split(),
    "job": "queued running succeeded failed retrying".split(),
}
EVENT_TYPES = ("page_view click signup login logout purchase add_to_cart "
               "remove_from_cart search share download upload error").split()
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/119.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
    "curl/8.4.0", "python-requests/2.31.0", "okhttp/4.12.0",
]

TEMPLATED = [
    "Hi %s, your order #%d has been shipped. Track it in your account under %s.",
    "Hello %s,\\n\\nThanks for reaching out. Ticket %d is now assigned to our %s team. We will get back to you within 24 hours.\\n\\nBest regards,\\nSupport",
    "Dear %s, invoice %d is overdue. Please settle the outstanding %s balance at your earliest convenience.",
    "%s changed the status of request %d to %s.",
    "Automatic reminder for %s: subscription %d renews next week (%s plan).",
    "Payment failed for %s (card ending %d). Reason: %s. We will retry in 3 days.",
]

TABLE_NAMES = """
accounts addresses api_keys audit_log invoices invoice_lines orders order_items
payments refunds products product_variants categories inventory_levels
warehouses shipments shipment_events customers customer_notes contacts
companies users user_sessions user_roles roles permissions login_attempts
password_resets email_messages email_events notifications push_tokens
support_tickets ticket_comments attachments documents document_versions tags
taggings comments reactions followers feed_items events page_views
search_queries carts cart_items coupons coupon_redemptions subscriptions
subscription_items plans price_history exchange_rates tax_rates ledger_entries
journal_entries bank_transactions payouts disputes webhooks webhook_deliveries
jobs job_runs scheduled_tasks feature_flags settings tenant_settings
integrations oauth_tokens devices device_pings metrics_hourly error_reports
reviews review_votes wishlists wishlist_items referrals loyalty_points
gift_cards store_locations
""".split()


def build_vocab(rng):
    words = list(COMMON_WORDS)
    seen = set(words)
    while len(words) < 3000:
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    # Zipf-like weights: common words first.
    cum = []
    total = 0.0
    for i in range(len(words)):
        total += 1.0 / (i + 2) ** 1.3
        cum.append(total)
    return words, cum


# ----------------------------------------------------------------------------
# Column kinds: (sql type, generator factory). A generator takes (rng, row_id)
# and returns the column's text (COPY format, \N for NULL).
# ----------------------------------------------------------------------------

EPOCH_2019 = 1546300800  # 2019-01-01
SPAN = 5 * 365 * 86400


def fmt_ts(t, frac):
    """frac < 0: a timestamp(0) column (whole seconds)."""
    tm = time.gmtime(t)
    if frac < 0:
        return "%04d-%02d-%02d %02d:%02d:%02d+00" % (tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d+00" % (tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac)


class Ctx:
    def __init__(self, rng, words, cum):
        self.rng = rng
        self.words = words
        self.cum = cum


def col_factory(kind, ctx, nrows_hint):
    rng = ctx.rng
    words, cum = ctx.words, ctx.cum
    choices = rng.choices
    randrange = rng.randrange
    random_ = rng.random

    def text(lo, hi):
        k = randrange(lo, hi)
        return " ".join(choices(words, cum_weights=cum, k=k))

    if kind == "fk":
        n = max(10, nrows_hint // rng.choice([3, 10, 50, 200]))
        if random_() < 0.5:
            # Clustered: rows of one parent were inserted together.
            per = max(1.0, nrows_hint / n)
            return "bigint NOT NULL", lambda rid: str(1 + int(rid / per) + (randrange(0, 3) if random_() < 0.2 else 0))
        return "bigint NOT NULL", lambda rid: str(randrange(1, n))
    if kind == "fk_null":
        n = max(10, nrows_hint // 20)
        return "bigint", lambda rid: "\\N" if random_() < 0.3 else str(randrange(1, n))
    if kind == "tenant":
        return "integer NOT NULL", lambda rid: str(1 + int(random_() ** 3 * 400))
    if kind == "created_at":
        # Roughly increasing with the id, like real inserts.
        base = EPOCH_2019 + randrange(0, SPAN // 2)
        step = max(1, (SPAN // 2) // max(1, nrows_hint))
        us = 1000000 if random_() < 0.5 else 0
        return "timestamp with time zone NOT NULL", lambda rid: fmt_ts(base + rid * step + randrange(0, step + 1), randrange(0, us) if us else -1)
    if kind in ("ts", "ts_null"):
        # Some time after the row's creation (which grows with the id).
        base = EPOCH_2019 + randrange(0, SPAN // 2)
        step = max(1, (SPAN // 2) // max(1, nrows_hint))
        lag = rng.choice([3600, 86400, 30 * 86400, 365 * 86400])
        pnull = 0.0 if kind == "ts" else 0.4
        us = 1000000 if random_() < 0.5 else 0
        return "timestamp with time zone", lambda rid: "\\N" if random_() < pnull else fmt_ts(base + rid * step + int(random_() ** 2 * lag), randrange(0, us) if us else -1)
    if kind == "date":
        def g(rid):
            tm = time.gmtime(EPOCH_2019 + randrange(0, SPAN))
            return "%04d-%02d-%02d" % (tm.tm_year, tm.tm_mon, tm.tm_mday)
        return "date", g
    if kind == "first_name":
        return "character varying(100)", lambda rid: rng.choice(FIRST)
    if kind == "last_name":
        return "character varying(100)", lambda rid: rng.choice(LAST)
    if kind == "full_name":
        return "text", lambda rid: rng.choice(FIRST) + " " + rng.choice(LAST)
    if kind == "email":
        def g(rid):
            f = rng.choice(FIRST).lower()
            l = rng.choice(LAST).lower()
            style = randrange(0, 4)
            if style == 0:
                local = f + "." + l
            elif style == 1:
                local = f[0] + l + str(randrange(1, 999))
            elif style == 2:
                local = f + "_" + l[:3] + str(randrange(10, 99))
            else:
                local = l + f[:2] + str(rid % 1000)
            return local + "@" + rng.choice(DOMAINS)
        return "character varying(255)", g
    if kind == "title":
        return "character varying(200)", lambda rid: " ".join(choices(words[:600], cum_weights=cum[:600], k=randrange(2, 8))).capitalize()
    if kind == "body":
        def g(rid):
            if random_() < 0.5:
                return rng.choice(TEMPLATED) % (rng.choice(FIRST), randrange(1000, 999999), rng.choice(words[:300]))
            return text(8, 60).capitalize() + "."
        return "text", g
    if kind == "body_null":
        return "text", lambda rid: "\\N" if random_() < 0.5 else text(4, 40).capitalize() + "."
    if kind == "long_body":
        return "text", lambda rid: text(40, 220).capitalize() + "."
    if kind == "int":
        hi = rng.choice([10, 100, 1000, 100000])
        return "integer", lambda rid: str(randrange(0, hi))
    if kind == "bigint":
        return "bigint", lambda rid: str(randrange(0, 10 ** randrange(3, 12)))
    if kind == "amount":
        def g(rid):
            v = int(random_() ** 2 * 500000)
            return "%d.%02d" % (v // 100, v % 100)
        return "numeric(12,2) NOT NULL", g
    if kind == "price":
        return "numeric(10,2)", lambda rid: "%d.%02d" % (randrange(1, 999), rng.choice((0, 49, 95, 99, 50, 0, 0)))
    if kind == "ratio":
        return "double precision", lambda rid: repr(round(random_(), randrange(2, 16)))
    if kind == "bool":
        p = rng.choice([0.05, 0.5, 0.9])
        return "boolean NOT NULL", lambda rid: "t" if random_() < p else "f"
    if kind == "status":
        values = rng.choice(list(STATUSES.values()))
        return "character varying(32) NOT NULL", lambda rid: choices(values, cum_weights=list(range(1, len(values) + 1))[::-1], k=1)[0]
    if kind == "event_type":
        return "character varying(64) NOT NULL", lambda rid: rng.choice(EVENT_TYPES)
    if kind == "country":
        return "character(2)", lambda rid: rng.choice(COUNTRIES)
    if kind == "currency":
        return "character(3) NOT NULL", lambda rid: rng.choice(CURRENCIES)
    if kind == "city":
        return "text", lambda rid: rng.choice(CITIES).replace("_", " ")
    if kind == "street":
        return "text", lambda rid: "%d %s %s" % (randrange(1, 400), rng.choice(LAST), rng.choice(("Street", "Road", "Avenue", "Lane", "Way", "Strasse", "Rue")))
    if kind == "zip":
        return "character varying(16)", lambda rid: "%05d" % randrange(1000, 99999)
    if kind == "phone":
        return "character varying(32)", lambda rid: "\\N" if random_() < 0.2 else "+%d %d %07d" % (randrange(1, 99), randrange(10, 999), randrange(0, 9999999))
    if kind == "uuid":
        def g(rid):
            h = "%032x" % rng.getrandbits(128)
            return "%s-%s-4%s-a%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:])
        return "uuid NOT NULL", g
    if kind == "token":
        return "character varying(64)", lambda rid: "%040x" % rng.getrandbits(160)
    if kind == "ip":
        return "inet", lambda rid: "%d.%d.%d.%d" % (rng.choice((10, 172, 192, 81, 94, 203, 66)), randrange(0, 256), randrange(0, 256), randrange(1, 255))
    if kind == "user_agent":
        return "text", lambda rid: rng.choice(USER_AGENTS)
    if kind == "url":
        return "text", lambda rid: "https://%s/%s/%s?ref=%s" % (rng.choice(DOMAINS), rng.choice(words[:400]), rng.choice(words[:2000]), rng.choice(EVENT_TYPES))
    if kind == "sku":
        return "character varying(32)", lambda rid: "%s-%05d-%s" % (rng.choice(("AB", "XK", "PR", "ZN", "QT")), randrange(0, 30000), rng.choice(("S", "M", "L", "XL", "STD")))
    if kind == "json":
        def g(rid):
            d = {}
            n = randrange(1, 6)
            for key in choices(("source", "plan", "locale", "tz", "score", "flags", "campaign", "version", "channel", "retries"), k=n):
                r = randrange(0, 4)
                if r == 0:
                    d[key] = randrange(0, 1000)
                elif r == 1:
                    d[key] = rng.choice(words[:300])
                elif r == 2:
                    d[key] = random_() < 0.5
                else:
                    d[key] = [randrange(0, 50) for _ in range(randrange(0, 4))]
            return json.dumps(d, separators=(", ", ": "))
        return "jsonb", g
    if kind == "json_null":
        _, inner = col_factory("json", ctx, nrows_hint)
        return "jsonb", lambda rid: "\\N" if random_() < 0.4 else inner(rid)
    raise ValueError(kind)


# Kinds an UPDATE typically changes.
MUTABLE = {"ts", "ts_null", "status", "int", "bigint", "amount", "bool", "body_null", "title", "json", "json_null", "ratio", "price", "phone", "token"}

TEMPLATES = [
    # narrow join / event tables
    ["fk", "fk", "created_at"],
    ["fk", "fk", "int", "created_at", "bool"],
    ["tenant", "fk", "event_type", "created_at", "ip", "json_null"],
    ["fk", "amount", "currency", "status", "created_at", "ts_null"],
    ["uuid", "fk", "event_type", "url", "user_agent", "ip", "created_at"],
    ["fk", "date", "int", "int", "bigint", "ratio"],
    # people / contacts
    ["tenant", "first_name", "last_name", "email", "phone", "status", "bool", "created_at", "ts", "json_null"],
    ["fk", "street", "city", "zip", "country", "bool", "created_at"],
    ["tenant", "full_name", "email", "token", "status", "created_at", "ts_null", "ip"],
    # commerce
    ["tenant", "fk", "fk_null", "status", "amount", "amount", "currency", "country", "created_at", "ts", "json"],
    ["fk", "fk", "sku", "int", "price", "amount", "created_at"],
    ["sku", "title", "body_null", "price", "currency", "bool", "int", "created_at", "ts"],
    # text-heavy
    ["tenant", "fk", "fk_null", "title", "body", "status", "created_at", "ts"],
    ["fk", "fk", "body", "int", "bool", "created_at"],
    ["tenant", "fk", "title", "long_body", "json_null", "created_at", "ts_null"],
    ["fk", "event_type", "body_null", "json", "created_at", "int"],
]

COL_NAMES = {
    "fk": ["user_id", "account_id", "order_id", "customer_id", "product_id", "ticket_id", "owner_id", "parent_id", "item_id", "session_id"],
    "fk_null": ["assignee_id", "referrer_id", "coupon_id", "replaced_by_id"],
    "tenant": ["tenant_id"],
    "created_at": ["created_at"],
    "ts": ["updated_at", "last_seen_at", "processed_at"],
    "ts_null": ["deleted_at", "completed_at", "expires_at", "confirmed_at"],
    "date": ["day", "valid_from", "period_start"],
    "first_name": ["first_name"], "last_name": ["last_name"], "full_name": ["display_name", "name"],
    "email": ["email"], "title": ["title", "subject", "name"], "body": ["body", "description", "content"],
    "body_null": ["notes", "comment", "reason"], "long_body": ["body_text", "content_html"],
    "int": ["quantity", "position", "attempts", "version", "priority", "count"],
    "bigint": ["bytes", "external_ref", "duration_ms"],
    "amount": ["amount", "total", "subtotal", "balance"], "price": ["unit_price", "list_price"],
    "ratio": ["score", "weight", "rate"], "bool": ["is_active", "verified", "archived", "is_default"],
    "status": ["status", "state"], "event_type": ["event_type", "kind"], "country": ["country"],
    "currency": ["currency"], "city": ["city"], "street": ["street"], "zip": ["postal_code"],
    "phone": ["phone"], "uuid": ["uuid", "external_id"], "token": ["token_hash", "fingerprint"],
    "ip": ["ip_address"], "user_agent": ["user_agent"], "url": ["url", "referrer"],
    "sku": ["sku"], "json": ["metadata", "payload", "attributes"], "json_null": ["extra", "context"],
}


class Table:
    def __init__(self, name, kinds, target_bytes, rng, ctx):
        self.name = name
        self.kinds = kinds
        self.target_bytes = target_bytes
        used = {"id"}
        self.col_names = ["id"]
        for k in kinds:
            cands = [c for c in COL_NAMES[k] if c not in used]
            c = rng.choice(cands) if cands else "%s_%d" % (COL_NAMES[k][0], len(used))
            used.add(c)
            self.col_names.append(c)
        # Rough row count for scaling fk ranges and timestamps.
        est = max(50, target_bytes // (25 + 22 * len(kinds)))
        self.cols = [col_factory(k, ctx, est) for k in kinds]
        self.types = ["bigint NOT NULL"] + [t for t, _ in self.cols]
        self.gens = [g for _, g in self.cols]
        self.mutable = [i + 1 for i, k in enumerate(kinds) if k in MUTABLE]

    def row(self, rid):
        return str(rid) + "\t" + "\t".join([g(rid) for g in self.gens])

    def ddl(self):
        cols = ",\n".join("    %s %s" % (n, t) for n, t in zip(self.col_names, self.types))
        return (
            "--\n-- Name: {t}; Type: TABLE; Schema: public; Owner: app\n--\n\n"
            "CREATE TABLE public.{t} (\n{cols}\n);\n\n\n"
            "ALTER TABLE public.{t} OWNER TO app;\n\n"
            "--\n-- Name: {t}_id_seq; Type: SEQUENCE; Schema: public; Owner: app\n--\n\n"
            "CREATE SEQUENCE public.{t}_id_seq\n    START WITH 1\n    INCREMENT BY 1\n"
            "    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1;\n\n\n"
            "ALTER TABLE public.{t}_id_seq OWNER TO app;\n\n"
            "--\n-- Name: {t}_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: app\n--\n\n"
            "ALTER SEQUENCE public.{t}_id_seq OWNED BY public.{t}.id;\n\n\n"
        ).format(t=self.name, cols=cols)

    def copy_header(self):
        return (
            "--\n-- Data for Name: {t}; Type: TABLE DATA; Schema: public; Owner: app\n--\n\n"
            "COPY public.{t} ({c}) FROM stdin;\n"
        ).format(t=self.name, c=", ".join(self.col_names))

    def trailer(self, max_id):
        return (
            "\\.\n\n\n"
            "--\n-- Name: {t}_id_seq; Type: SEQUENCE SET; Schema: public; Owner: app\n--\n\n"
            "SELECT pg_catalog.setval('public.{t}_id_seq', {n}, true);\n\n\n"
        ).format(t=self.name, n=max_id)


HEADER = """--
-- PostgreSQL database dump
--

-- Dumped from database version 15.4 (Debian 15.4-1.pgdg120+1)
-- Dumped by pg_dump version 15.4 (Debian 15.4-1.pgdg120+1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: pgcrypto; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;


--
-- Name: EXTENSION pgcrypto; Type: COMMENT; Schema: -; Owner: 
--

COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';


SET default_tablespace = '';

SET default_table_access_method = heap;

"""

FOOTER_END = """--
-- PostgreSQL database dump complete
--

"""


def footer(tables):
    out = []
    for t in tables:
        out.append(
            "--\n-- Name: {t} id; Type: DEFAULT; Schema: public; Owner: app\n--\n\n"
            "ALTER TABLE ONLY public.{t} ALTER COLUMN id SET DEFAULT nextval('public.{t}_id_seq'::regclass);\n\n\n".format(t=t.name))
    for t in tables:
        out.append(
            "--\n-- Name: {t} {t}_pkey; Type: CONSTRAINT; Schema: public; Owner: app\n--\n\n"
            "ALTER TABLE ONLY public.{t}\n    ADD CONSTRAINT {t}_pkey PRIMARY KEY (id);\n\n\n".format(t=t.name))
    for t in tables:
        for c, k in zip(t.col_names[1:], t.kinds):
            if k in ("fk", "created_at", "email", "sku", "uuid"):
                out.append(
                    "--\n-- Name: {t}_{c}_idx; Type: INDEX; Schema: public; Owner: app\n--\n\n"
                    "CREATE INDEX {t}_{c}_idx ON public.{t} USING btree ({c});\n\n\n".format(t=t.name, c=c))
    out.append(FOOTER_END)
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("night1")
    ap.add_argument("night2")
    ap.add_argument("--size-mb", type=int, default=1100, help="size of night1 in MB (10^6 bytes), default 1100")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--manifest", help="write a JSON summary (tables, sizes, churn) here")
    args = ap.parse_args()

    t0 = time.time()
    master = random.Random(args.seed)
    words, cum = build_vocab(random.Random(args.seed * 7919 + 1))
    target = args.size_mb * MB

    n_tables = master.randint(40, 80)
    names = sorted(master.sample(TABLE_NAMES, n_tables))  # pg_dump sorts by name
    # Table sizes: heavy-tailed (a few big tables, many small ones), in a
    # random order relative to the names.
    weights = [1.0 / (i + 1) ** 1.2 for i in range(n_tables)]
    master.shuffle(weights)
    wsum = sum(weights)
    touched = set(master.sample(range(n_tables), max(1, round(n_tables / 10))))

    tables = []
    for i, name in enumerate(names):
        trng = random.Random("%d/%s/schema" % (args.seed, name))
        kinds = list(trng.choice(TEMPLATES))
        ctx = Ctx(random.Random("%d/%s/data" % (args.seed, name)), words, cum)
        tables.append(Table(name, kinds, int(target * 0.995 * weights[i] / wsum), trng, ctx))

    summary = {"seed": args.seed, "size_mb": args.size_mb, "tables": []}
    head = HEADER + "".join(t.ddl() for t in tables)
    with open(args.night1, "w", encoding="utf-8", newline="\n", buffering=8 << 20) as f1, \
         open(args.night2, "w", encoding="utf-8", newline="\n", buffering=8 << 20) as f2:
        f1.write(head)
        f2.write(head)
        written = len(head)
        for i, t in enumerate(tables):
            # Night 1: rows until the table's byte budget is reached.
            rows = []
            size = 0
            rid = 0
            budget = t.target_bytes
            if i == len(tables) - 1:
                budget = max(budget, target - written - 200_000)  # reach the requested size
            while size < budget or rid < 20:
                rid += 1
                r = t.row(rid)
                rows.append(r)
                size += len(r) + 1
            n = len(rows)
            h = t.copy_header()
            f1.write(h)
            f1.write("\n".join(rows))
            f1.write("\n")
            tr1 = t.trailer(n)
            f1.write(tr1)
            written += len(h) + size + len(tr1)

            # Night 2: churn, from a separate deterministic stream.
            crng = random.Random("%d/%s/churn" % (args.seed, t.name))
            f2.write(h)
            updated = 0
            if i in touched:
                k = n // 5
                upd = crng.sample(range(n), k)
                upd_set = set(upd)
                keep = [r for j, r in enumerate(rows) if j not in upd_set]
                f2.write("\n".join(keep))
                f2.write("\n")
                moved = []
                for j in upd:
                    fields = rows[j].split("\t")
                    cols = t.mutable or [len(fields) - 1]
                    for c in crng.sample(cols, min(len(cols), crng.randint(1, 3))):
                        fields[c] = t.gens[c - 1](int(fields[0]))
                    moved.append("\t".join(fields))
                f2.write("\n".join(moved))
                f2.write("\n")
                updated = k
            else:
                f2.write("\n".join(rows))
                f2.write("\n")
            new = max(1, n * 2 // 100)
            f2.write("\n".join(t.row(n + j + 1) for j in range(new)))
            f2.write("\n")
            f2.write(t.trailer(n + new))
            summary["tables"].append({"name": t.name, "rows": n, "bytes": size, "touched": i in touched, "updated_rows": updated, "new_rows": new})
            del rows
            print("gen_dump: %-22s %9d rows %8.1f MB%s  (%.0fs)" % (t.name, n, size / MB, "  touched" if i in touched else "", time.time() - t0), file=sys.stderr)
        foot = footer(tables)
        f1.write(foot)
        f2.write(foot)
    touched_bytes = sum(x["bytes"] for x in summary["tables"] if x["touched"])
    summary["touched_tables"] = [x["name"] for x in summary["tables"] if x["touched"]]
    summary["touched_bytes"] = touched_bytes
    summary["seconds"] = round(time.time() - t0, 1)
    if args.manifest:
        with open(args.manifest, "w") as f:
            json.dump(summary, f, indent=1)
    print("gen_dump: %d tables, %d touched (%.1f MB of table data), done in %.0fs" % (n_tables, len(touched), touched_bytes / MB, time.time() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
