/*
 * route_standin.c - a stand-in for proxy/route.c (branch i12-route) so
 * the front ends build and run before the real router lands: the same
 * config tables and API, answering every lookup at once with the first
 * back end that serves the protocol (or host='s first name). No Redis, no
 * hashing, no health state beyond "up". Deleted when i12-route is merged.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/route.h"

#define FB(field) offsetof(struct route_backend_conf, field)
#define FR(field) offsetof(struct route_redis_conf, field)
#define FH(field) offsetof(struct route_health_conf, field)

const char *const route_tls_names[] = { "none", "starttls", "implicit", NULL };
const char *const route_proto_names[] = { "imap", "pop3", "submission", NULL };

const struct cfg_field route_backend_fields[] = {
	{ "", CFG_LOC, FB(loc) },
	{ "name", CFG_STRING, FB(name), CFG_REQUIRED },
	{ "imap", CFG_ADDR, FB(imap), 0 },
	{ "pop3", CFG_ADDR, FB(pop3), 0 },
	{ "submission", CFG_ADDR, FB(submission), 0 },
	{ "weight", CFG_INT, FB(weight), 0, "1", 1, 1000 },
	{ "tls", CFG_ENUM, FB(tls), 0, "none", .choices = route_tls_names },
	{ "sni", CFG_STRING, FB(sni), 0 },
	{ NULL },
};

const struct cfg_field route_redis_fields[] = {
	{ "redis", CFG_STRING, FR(redis), 0 },
	{ "redis_timeout", CFG_DURATION, FR(redis_timeout), 0, "500ms", 10,
	    60000 },
	{ "cache_ttl", CFG_DURATION, FR(cache_ttl), 0, "60s", 0, 86400000 },
	{ "cache_size", CFG_INT, FR(cache_size), 0, "10000", 1, 10000000 },
	{ "key_prefix", CFG_STRING, FR(key_prefix), 0, "rg:route:" },
	{ NULL },
};

const struct cfg_field route_health_fields[] = {
	{ "interval", CFG_DURATION, FH(interval), 0, "2s", 100, 3600000 },
	{ "timeout", CFG_DURATION, FH(timeout), 0, "1s", 50, 60000 },
	{ "fall", CFG_INT, FH(fall), 0, "2", 1, 100 },
	{ "rise", CFG_INT, FH(rise), 0, "2", 1, 100 },
	{ NULL },
};

struct router {
	unsigned n;
	struct route_backend *be;
};

struct route_worker {
	struct router *r;
};

int
route_conf_check(const struct route_conf *rc, struct cfg_error *err)
{
	for (unsigned i = 0; i < rc->nbackends; i++) {
		const struct route_backend_conf *b = &rc->backends[i];

		if (b->name[0] == '\0' || strlen(b->name) >= 64) {
			cfg_error_at(err, &b->loc, "backend name '%s' is bad",
			    b->name);
			return -1;
		}
		for (unsigned j = 0; j < i; j++)
			if (strcmp(rc->backends[j].name, b->name) == 0) {
				cfg_error_at(err, &b->loc,
				    "backend name '%s' is already used",
				    b->name);
				return -1;
			}
		if (b->imap.len == 0 && b->pop3.len == 0 &&
		    b->submission.len == 0) {
			cfg_error_at(err, &b->loc,
			    "backend '%s' has no imap, pop3 or submission "
			    "address",
			    b->name);
			return -1;
		}
	}
	return 0;
}

static void
copy_addr(struct route_addr *a, const struct cfg_addr *c)
{
	memcpy(&a->ss, &c->ss, sizeof(a->ss));
	a->len = c->len;
	memcpy(a->text, c->text, sizeof(a->text));
}

struct router *
router_new(const struct route_conf *rc, struct metrics *m, const char **error_r)
{
	struct router *r = calloc(1, sizeof(*r));

	(void)m;
	if (r == NULL ||
	    (r->be = calloc(rc->nbackends + 1, sizeof(*r->be))) == NULL) {
		free(r);
		*error_r = "out of memory";
		return NULL;
	}
	r->n = rc->nbackends;
	for (unsigned i = 0; i < r->n; i++) {
		const struct route_backend_conf *b = &rc->backends[i];
		struct route_backend *be = &r->be[i];

		memcpy(be->name, b->name, strlen(b->name) + 1);
		be->index = i;
		be->weight = (unsigned)b->weight;
		be->tls = (enum route_tls)b->tls;
		if (b->sni != NULL && strlen(b->sni) < sizeof(be->sni))
			memcpy(be->sni, b->sni, strlen(b->sni) + 1);
		copy_addr(&be->addr[ROUTE_IMAP], &b->imap);
		copy_addr(&be->addr[ROUTE_POP3], &b->pop3);
		copy_addr(&be->addr[ROUTE_SUBMISSION], &b->submission);
		for (unsigned p = 0; p < ROUTE_NPROTO; p++)
			atomic_init(&be->up[p], true);
	}
	return r;
}

void
router_free(struct router **r)
{
	if (*r == NULL)
		return;
	free((*r)->be);
	free(*r);
	*r = NULL;
}

unsigned
router_nbackends(const struct router *r)
{
	return r->n;
}

const struct route_backend *
router_backend(const struct router *r, unsigned i)
{
	return i < r->n ? &r->be[i] : NULL;
}

const struct route_backend *
router_find(const struct router *r, const char *name, size_t len)
{
	for (unsigned i = 0; i < r->n; i++)
		if (strlen(r->be[i].name) == len &&
		    memcmp(r->be[i].name, name, len) == 0)
			return &r->be[i];
	return NULL;
}

bool
route_backend_up(const struct route_backend *be, enum route_proto p)
{
	return atomic_load(&be->up[p]);
}

void
route_report_connect(struct route_worker *w, const struct route_backend *be,
    enum route_proto p, bool ok, uint64_t ms)
{
	(void)w;
	(void)be;
	(void)p;
	(void)ok;
	(void)ms;
}

struct route_worker *
route_worker_new(struct router *r, struct loop *l)
{
	struct route_worker *w = calloc(1, sizeof(*w));

	(void)l;
	if (w != NULL)
		w->r = r;
	return w;
}

void
route_worker_free(struct route_worker **w)
{
	free(*w);
	*w = NULL;
}

void
route_lookup(struct route_worker *w, const struct route_query *q,
    route_done_fn *done, void *ctx, struct route_req **req_r)
{
	struct route_result res = { .status = ROUTE_NONE,
		.source = ROUTE_SRC_HASH,
		.why = "no back end serves the protocol" };
	const struct route_backend *be = NULL;

	*req_r = NULL;
	if (q->host_field != NULL)
		be = router_find(w->r, q->host_field,
		    strcspn(q->host_field, ","));
	for (unsigned i = 0; be == NULL && i < w->r->n; i++)
		if (w->r->be[i].addr[q->proto].len > 0)
			be = &w->r->be[i];
	if (be != NULL && be->addr[q->proto].len > 0) {
		res.be = be;
		res.status = ROUTE_OK;
		res.addr = (const struct sockaddr *)&be->addr[q->proto].ss;
		res.len = be->addr[q->proto].len;
		res.why = "first back end (stand-in)";
	}
	done(ctx, &res);
}

void
route_cancel(struct route_req **req)
{
	*req = NULL;
}
