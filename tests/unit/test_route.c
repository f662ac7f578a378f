/*
 * test_route.c - ringgate's routing without Redis: weighted rendezvous
 * hashing (stable values, minimal movement when a back end is added or
 * removed, weights honoured), the host= override and its failure answers,
 * the config group, and the health checker against a real listener (a
 * thread serving greetings) that goes away and comes back, on a real loop.
 *
 * The hash tests are statistical but deterministic: the hash has no seed,
 * so the same names always give the same counts. Skips (77) where
 * io_uring is unavailable (loop tests only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/timer.h"
#include "proxy/health.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "proxy/route_private.h"

#include "server_helpers.h"

#define NUSERS 10000

static void
user_name(char *buf, size_t cap, unsigned i)
{
	snprintf(buf, cap, "user%u@example.org", i);
}

static void
nodes_make(struct route_hash_node *n, const char *const *names,
    const double *weights, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		n[i].key = route_hash_str(names[i], strlen(names[i]));
		n[i].weight = weights ? weights[i] : 1;
	}
}

static int
pick(const struct route_hash_node *n, unsigned count, const char *user)
{
	return route_hash_pick(n, count, route_hash_str(user, strlen(user)));
}

/* ---- pure hashing ---- */

static void
test_hash_stable(void **state)
{
	static const char *const names[] = { "store1", "store2", "store3",
		"store4" };
	struct route_hash_node n[4], rev[4];
	static const char *const rnames[] = { "store4", "store3", "store2",
		"store1" };

	(void)state;
	nodes_make(n, names, NULL, 4);
	nodes_make(rev, rnames, NULL, 4);
	/* pinned: a change of hash function would move every user */
	assert_int_equal(route_hash_str("", 0), 0xefd01f60ba992926ULL);
	assert_int_equal(route_hash_str("alice", 5), 0x13aff279a0ec4524ULL);
	assert_int_equal(pick(n, 4, "alice"), 0);
	assert_int_equal(pick(n, 4, "bob"), 2);
	assert_int_equal(pick(n, 4, "dave@example.org"), 0);
	assert_int_equal(route_hash_pick(n, 0, 1), -1);
	for (unsigned i = 0; i < 1000; i++) {
		char u[64];
		int a, b;

		user_name(u, sizeof(u), i);
		a = pick(n, 4, u);
		assert_int_equal(a, pick(n, 4, u));
		/* config order does not matter, only names */
		b = pick(rev, 4, u);
		assert_string_equal(names[a], rnames[b]);
	}
}

static void
test_hash_add_moves_share(void **state)
{
	static const char *const names[] = { "a", "b", "c", "d", "e" };
	struct route_hash_node n[5];
	unsigned moved = 0, per[5] = { 0 };

	(void)state;
	nodes_make(n, names, NULL, 5);
	for (unsigned i = 0; i < NUSERS; i++) {
		char u[64];
		int before, after;

		user_name(u, sizeof(u), i);
		before = pick(n, 4, u);
		after = pick(n, 5, u);
		per[after]++;
		if (before != after) {
			assert_int_equal(after, 4); /* only to the new one */
			moved++;
		}
	}
	print_message("4 -> 5 back ends: %u of %u users moved (%.1f%%)\n",
	    moved, NUSERS, 100.0 * moved / NUSERS);
	/* 1/5 expected; 3 sigma of a binomial(10000, 0.2) is 120 */
	assert_true(moved > 1800 && moved < 2200);
	for (unsigned i = 0; i < 5; i++)
		assert_true(per[i] > 1800 && per[i] < 2200);
}

static void
test_hash_remove_moves_only_its_users(void **state)
{
	static const char *const names[] = { "a", "b", "c", "d" };
	static const char *const rest[] = { "a", "b", "d" };
	struct route_hash_node n[4], r[3];

	(void)state;
	nodes_make(n, names, NULL, 4);
	nodes_make(r, rest, NULL, 3);
	for (unsigned i = 0; i < NUSERS; i++) {
		char u[64];
		int before, after;

		user_name(u, sizeof(u), i);
		before = pick(n, 4, u);
		after = pick(r, 3, u);
		if (before != 2)
			assert_string_equal(names[before], rest[after]);
	}
}

static void
test_hash_weights(void **state)
{
	static const char *const names[] = { "w1", "w2", "w3", "w4" };
	static const double w[] = { 1, 2, 3, 4 };
	struct route_hash_node n[4];
	unsigned per[4] = { 0 };
	unsigned total = 2 * NUSERS;

	(void)state;
	nodes_make(n, names, w, 4);
	for (unsigned i = 0; i < total; i++) {
		char u[64];

		user_name(u, sizeof(u), i);
		per[pick(n, 4, u)]++;
	}
	for (unsigned i = 0; i < 4; i++) {
		double share = (double)per[i] / total, want = w[i] / 10;

		print_message("weight %.0f: %.3f (want %.3f)\n", w[i], share,
		    want);
		assert_true(share > want - 0.015 && share < want + 0.015);
	}
}

/* ---- config ---- */

static char conf_path[64];

static void
write_conf(const char *text)
{
	int fd;

	snprintf(conf_path, sizeof(conf_path), "/tmp/test_route_XXXXXX");
	fd = mkstemp(conf_path);
	assert_int_not_equal(fd, -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
test_config(void **state)
{
	struct proxy_config cf;
	struct cfg_error err;

	(void)state;
	write_conf(
	    "backends = (\n"
	    " { name = \"s1\"; imap = \"127.0.0.1:1143\";\n"
	    "   pop3 = \"127.0.0.1:1110\"; weight = 3; tls = \"starttls\";"
	    " sni = \"s1.example\"; },\n"
	    " { name = \"s2\"; submission = \"[::1]:1587\"; }\n"
	    ");\n"
	    "route = { redis = \"127.0.0.1:6379\"; cache_ttl = \"5s\"; };\n"
	    "health = { interval = \"1s\"; fall = 3; };\n");
	assert_int_equal(proxy_config_load(conf_path, &cf, &err), 0);
	assert_int_equal(cf.route.nbackends, 2);
	assert_string_equal(cf.route.backends[0].name, "s1");
	assert_int_equal(cf.route.backends[0].weight, 3);
	assert_int_equal(cf.route.backends[0].tls, ROUTE_TLS_STARTTLS);
	assert_int_not_equal(cf.route.backends[0].imap.len, 0);
	assert_int_equal(cf.route.backends[0].submission.len, 0);
	assert_int_equal(cf.route.backends[1].weight, 1);
	assert_int_equal(cf.route.backends[1].tls, ROUTE_TLS_NONE);
	assert_string_equal(cf.route.route.redis, "127.0.0.1:6379");
	assert_int_equal(cf.route.route.cache_ttl, 5000);
	assert_int_equal(cf.route.route.redis_timeout, 200);
	assert_int_equal(cf.route.route.cache_size, 10000);
	assert_string_equal(cf.route.route.key_prefix, "rg:route:");
	assert_int_equal(cf.route.health.interval, 1000);
	assert_int_equal(cf.route.health.timeout, 2000);
	assert_int_equal(cf.route.health.fall, 3);
	assert_int_equal(cf.route.health.rise, 2);
	proxy_config_free(&cf);
	unlink(conf_path);

	write_conf("backends = ( { name = \"s1\"; imap = \"127.0.0.1:1\"; },\n"
		   " { name = \"s1\"; imap = \"127.0.0.1:2\"; } );\n");
	assert_int_equal(proxy_config_load(conf_path, &cf, &err), -1);
	assert_non_null(strstr(err.msg, "already used"));
	unlink(conf_path);

	write_conf("backends = ( { name = \"s1\"; } );\n");
	assert_int_equal(proxy_config_load(conf_path, &cf, &err), -1);
	assert_non_null(strstr(err.msg, "serves nothing"));
	unlink(conf_path);

	write_conf(
	    "backends = ( { name = \"s1\"; imap = \"127.0.0.1:1\"; } );\n"
	    "route = { redis = \"localhost:6379\"; };\n");
	assert_int_equal(proxy_config_load(conf_path, &cf, &err), -1);
	assert_non_null(strstr(err.msg, "numeric"));
	assert_non_null(strstr(err.msg, ":2:")); /* the route group's line */
	unlink(conf_path);
}

/* ---- router on a loop ---- */

struct answer {
	int calls;
	struct route_result res;
};

static void
on_answer(void *ctx, const struct route_result *res)
{
	struct answer *a = ctx;

	a->calls++;
	a->res = *res;
}

static struct loop *
new_loop(struct metrics *m)
{
	struct loop_conf conf = { .buf_count = 64,
		.buf_size = 4096,
		.metrics = m };
	const char *err = NULL;
	struct loop *l = loop_new(&conf, &err);

	if (l == NULL) {
		print_message("skip: %s\n", err);
		exit(77);
	}
	return l;
}

static void
conf_backend(struct route_backend_conf *b, const char *name, const char *imap,
    const char *pop3, int64_t weight)
{
	memset(b, 0, sizeof(*b));
	b->name = (char *)name;
	b->weight = weight;
	if (imap != NULL)
		assert_int_equal(cfg_parse_addr(imap, &b->imap), 0);
	if (pop3 != NULL)
		assert_int_equal(cfg_parse_addr(pop3, &b->pop3), 0);
}

static struct answer
lookup(struct route_worker *w, const char *user, const char *host,
    enum route_proto p)
{
	struct route_query q = { .user = user, .host_field = host, .proto = p };
	struct answer a = { 0 };
	struct route_req *req = (void *)1;

	route_lookup(w, &q, on_answer, &a, &req);
	assert_null(req); /* no Redis: always answered at once */
	assert_int_equal(a.calls, 1);
	return a;
}

static void
test_host_override(void **state)
{
	struct route_backend_conf b[3];
	struct route_conf rc = { .backends = b, .nbackends = 3 };
	struct metrics *m = metrics_new("ringgate", 1);
	struct loop *l = new_loop(m);
	const char *err = NULL;
	struct router *r;
	struct route_worker *w;
	struct answer a;
	const struct route_backend *hb;
	unsigned hashed_down = 0;

	(void)state;
	conf_backend(&b[0], "s1", "127.0.0.1:1143", "127.0.0.1:1110", 1);
	conf_backend(&b[1], "s2", "127.0.0.1:2143", "127.0.0.1:2110", 1);
	conf_backend(&b[2], "s3", "127.0.0.1:3143", NULL, 1);
	r = router_new(&rc, m, &err);
	assert_non_null(r);
	w = route_worker_new(r, l);
	assert_non_null(w);

	/* hashing, and host= winning over it */
	a = lookup(w, "alice", NULL, ROUTE_IMAP);
	assert_int_equal(a.res.status, ROUTE_OK);
	assert_int_equal(a.res.source, ROUTE_SRC_HASH);
	hb = a.res.be;
	for (unsigned i = 0; i < 3; i++) {
		const struct route_backend *be = router_backend(r, i);

		a = lookup(w, "alice", be->name, ROUTE_IMAP);
		assert_int_equal(a.res.status, ROUTE_OK);
		assert_int_equal(a.res.source, ROUTE_SRC_HOST);
		assert_ptr_equal(a.res.be, be);
		assert_int_equal(a.res.len, be->addr[ROUTE_IMAP].len);
		assert_memory_equal(a.res.addr, &be->addr[ROUTE_IMAP].ss,
		    a.res.len);
	}
	/* unknown names are skipped; none known: hashing */
	a = lookup(w, "alice", "nosuch, s2", ROUTE_IMAP);
	assert_string_equal(a.res.be->name, "s2");
	a = lookup(w, "alice", "nosuch", ROUTE_IMAP);
	assert_int_equal(a.res.source, ROUTE_SRC_HASH);
	assert_ptr_equal(a.res.be, hb);
	a = lookup(w, "alice", "", ROUTE_IMAP);
	assert_int_equal(a.res.source, ROUTE_SRC_HASH);
	assert_int_equal(
	    metrics_value(m,
		metrics_counter(m, "route_host_unknown_total", "", NULL)),
	    2);

	/* a list: the first one up; all down: DOWN naming the first */
	router_set_up(r, 0, ROUTE_IMAP, false, "test");
	a = lookup(w, "alice", "s1,s2", ROUTE_IMAP);
	assert_int_equal(a.res.status, ROUTE_OK);
	assert_string_equal(a.res.be->name, "s2");
	a = lookup(w, "alice", "s1", ROUTE_IMAP);
	assert_int_equal(a.res.status, ROUTE_DOWN);
	assert_string_equal(a.res.be->name, "s1");
	assert_null(a.res.addr);
	/* down for IMAP only */
	a = lookup(w, "alice", "s1", ROUTE_POP3);
	assert_int_equal(a.res.status, ROUTE_OK);
	/* s3 has no POP3: NONE, never another store */
	a = lookup(w, "alice", "s3", ROUTE_POP3);
	assert_int_equal(a.res.status, ROUTE_NONE);

	/* hashed users of a down store get DOWN, the others are served */
	for (unsigned i = 0; i < 300; i++) {
		char u[64];

		user_name(u, sizeof(u), i);
		a = lookup(w, u, NULL, ROUTE_IMAP);
		if (strcmp(a.res.be->name, "s1") == 0) {
			assert_int_equal(a.res.status, ROUTE_DOWN);
			hashed_down++;
		} else {
			assert_int_equal(a.res.status, ROUTE_OK);
		}
	}
	assert_true(hashed_down > 0 && hashed_down < 300);
	router_set_up(r, 0, ROUTE_IMAP, true, "test");

	/* a passive failure marks down at once */
	route_report_connect(w, router_backend(r, 1), ROUTE_POP3, false, 0);
	assert_false(route_backend_up(router_backend(r, 1), ROUTE_POP3));
	assert_true(route_backend_up(router_backend(r, 1), ROUTE_IMAP));
	a = lookup(w, "alice", "s2", ROUTE_POP3);
	assert_int_equal(a.res.status, ROUTE_DOWN);

	route_worker_free(&w);
	assert_null(w);
	router_free(&r);
	loop_free(l);
	metrics_free(m);
}

static void
test_no_backends(void **state)
{
	struct route_conf rc = { 0 };
	struct metrics *m = metrics_new("ringgate", 1);
	struct loop *l = new_loop(m);
	const char *err = NULL;
	struct router *r = router_new(&rc, m, &err);
	struct route_worker *w = route_worker_new(r, l);
	struct answer a;

	(void)state;
	a = lookup(w, "bob", NULL, ROUTE_SUBMISSION);
	assert_int_equal(a.res.status, ROUTE_NONE);
	assert_null(a.res.be);
	route_worker_free(&w);
	router_free(&r);
	loop_free(l);
	metrics_free(m);
}

/* ---- health checks against a real listener ---- */

static char *
render(struct metrics *m)
{
	struct buf b = { 0 };
	char *s;

	assert_int_equal(metrics_render(m, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	s = strdup(buf_head(&b));
	buf_free(&b);
	return s;
}

/* A greeting server on its own thread: accepts, writes greet, closes. */
struct fake {
	pthread_t th;
	int fd;
	uint16_t port;
	const char *greet;
	volatile int stop;
};

static void *
fake_run(void *arg)
{
	struct fake *f = arg;

	while (!f->stop) {
		int c = accept(f->fd, NULL, NULL);

		if (c == -1)
			break;
		if (write(c, f->greet, strlen(f->greet)) < 0) {
			/* the checker may have gone: fine */
		}
		usleep(1000);
		close(c);
	}
	return NULL;
}

static void
fake_start(struct fake *f, const char *greet)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons(f->port) };
	int one = 1;

	f->greet = greet;
	f->stop = 0;
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_not_equal(f->fd, -1);
	setsockopt(f->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(f->fd, 16), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_run, f), 0);
}

static void
fake_stop(struct fake *f)
{
	f->stop = 1;
	shutdown(f->fd, SHUT_RDWR); /* wakes accept() */
	pthread_join(f->th, NULL);
	close(f->fd);
	f->fd = -1;
}

/* The scenario, one step per phase, driven by a polling timer. */
enum phase {
	P_WAIT_UP,
	P_WAIT_DOWN,
	P_WAIT_BACK,
	P_PASSIVE,
	P_WAIT_GARBAGE,
	P_DONE
};

struct hs {
	struct loop *l;
	struct router *r;
	struct route_worker *w;
	struct health *h;
	struct fake f;
	struct timer poll, deadline;
	enum phase phase;
	uint64_t mark;
	bool timed_out;
	unsigned transitions;
};

static void
hs_finish(struct hs *s)
{
	timer_stop(&s->poll);
	timer_stop(&s->deadline);
	health_free(&s->h);
	loop_stop(s->l, 0);
}

static void
hs_poll(struct timer *t, void *arg)
{
	struct hs *s = arg;
	const struct route_backend *be = router_backend(s->r, 0);
	bool up = route_backend_up(be, ROUTE_IMAP);
	uint64_t rounds = health_rounds(s->h);

	(void)t;
	switch (s->phase) {
	case P_WAIT_UP: /* healthy: several rounds, still up */
		if (rounds >= 4) {
			assert_true(up);
			fake_stop(&s->f);
			s->phase = P_WAIT_DOWN;
		}
		break;
	case P_WAIT_DOWN:
		if (!up) {
			s->transitions++;
			fake_start(&s->f, "* OK ready\r\n");
			s->mark = rounds;
			s->phase = P_WAIT_BACK;
		}
		break;
	case P_WAIT_BACK:
		if (up) {
			/* rise = 2: at least two checks after the restart */
			assert_true(rounds >= s->mark + 2);
			s->transitions++;
			route_report_connect(s->w, be, ROUTE_IMAP, false, 0);
			assert_false(route_backend_up(be, ROUTE_IMAP));
			s->mark = rounds;
			s->phase = P_PASSIVE;
		}
		break;
	case P_PASSIVE: /* a failed login's mark: the checker restores it */
		if (up) {
			assert_true(rounds >= s->mark + 2);
			fake_stop(&s->f);
			fake_start(&s->f, "-ERR not an IMAP server\r\n");
			s->phase = P_WAIT_GARBAGE;
		}
		break;
	case P_WAIT_GARBAGE:
		if (!up) {
			s->phase = P_DONE;
			hs_finish(s);
			return;
		}
		break;
	case P_DONE:
		return;
	}
	timer_set(&s->poll, 10);
}

static void
hs_deadline(struct timer *t, void *arg)
{
	struct hs *s = arg;

	(void)t;
	s->timed_out = true;
	hs_finish(s);
}

static void
test_health(void **state)
{
	struct route_backend_conf b[1];
	struct route_conf rc = { .backends = b, .nbackends = 1 };
	struct route_health_conf hc = { .interval = 30,
		.timeout = 500,
		.fall = 2,
		.rise = 2 };
	struct metrics *m = metrics_new("ringgate", 1);
	struct hs s = { 0 };
	const char *err = NULL;
	char addr[32];
	char *text;

	(void)state;
	s.l = new_loop(m);
	s.f.port = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", s.f.port);
	conf_backend(&b[0], "s1", addr, NULL, 1);
	s.r = router_new(&rc, m, &err);
	assert_non_null(s.r);
	s.w = route_worker_new(s.r, s.l);
	fake_start(&s.f, "* OK [CAPABILITY IMAP4rev1] ready\r\n");
	s.h = health_new(s.r, &hc, s.l, NULL, &err);
	assert_non_null(s.h);
	timer_init(&s.poll, s.l, hs_poll, &s);
	timer_init(&s.deadline, s.l, hs_deadline, &s);
	timer_set(&s.poll, 10);
	timer_set(&s.deadline, 30000); /* a hang guard, not a measurement */
	assert_int_equal(loop_run(s.l), 0);
	assert_false(s.timed_out);
	assert_int_equal(s.phase, P_DONE);
	assert_int_equal(s.transitions, 2);
	fake_stop(&s.f);

	/* the metrics carry both results and the state */
	text = render(m);
	assert_non_null(strstr(text,
	    "ringgate_backend_up{backend=\"s1\",proto=\"imap\"} 0"));
	assert_non_null(strstr(text,
	    "ringgate_health_checks_total{backend=\"s1\",proto=\"imap\","
	    "result=\"fail\"}"));
	assert_non_null(strstr(text, "ringgate_backend_connect_seconds"));
	free(text);
	route_worker_free(&s.w);
	router_free(&s.r);
	loop_free(s.l);
	metrics_free(m);
}

/* An implicit-TLS back end checked without a TLS client: a TCP connect
 * is the whole check (its greeting is encrypted), so silence is up. */
struct tcp_only {
	struct loop *l;
	struct health *h;
	struct timer poll;
};

static void
tcp_only_poll(struct timer *t, void *arg)
{
	struct tcp_only *s = arg;

	(void)t;
	if (health_rounds(s->h) >= 4) {
		health_free(&s->h);
		loop_stop(s->l, 0);
		return;
	}
	timer_set(&s->poll, 10);
}

static void
test_health_tcp_only(void **state)
{
	struct route_backend_conf b[1];
	struct route_conf rc = { .backends = b, .nbackends = 1 };
	struct route_health_conf hc = { .interval = 20,
		.timeout = 5000,
		.fall = 1,
		.rise = 1 };
	struct metrics *m = metrics_new("ringgate", 1);
	struct tcp_only s = { 0 };
	struct fake f = { 0 };
	const char *err = NULL;
	struct router *r;
	char addr[32];

	(void)state;
	s.l = new_loop(m);
	f.port = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", f.port);
	conf_backend(&b[0], "tls1", addr, NULL, 1);
	b[0].tls = ROUTE_TLS_IMPLICIT;
	r = router_new(&rc, m, &err);
	assert_non_null(r);
	fake_start(&f, ""); /* says nothing in the clear */
	s.h = health_new(r, &hc, s.l, NULL, &err);
	assert_non_null(s.h);
	timer_init(&s.poll, s.l, tcp_only_poll, &s);
	timer_set(&s.poll, 10);
	assert_int_equal(loop_run(s.l), 0);
	fake_stop(&f);
	assert_true(route_backend_up(router_backend(r, 0), ROUTE_IMAP));
	assert_int_equal(
	    metrics_value(m,
		metrics_counter(m, "health_checks_total", "",
		    "backend=\"tls1\",proto=\"imap\",result=\"fail\"")),
	    0);
	router_free(&r);
	loop_free(s.l);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_stable),
		cmocka_unit_test(test_hash_add_moves_share),
		cmocka_unit_test(test_hash_remove_moves_only_its_users),
		cmocka_unit_test(test_hash_weights),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_host_override),
		cmocka_unit_test(test_no_backends),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_health_tcp_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
