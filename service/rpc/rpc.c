/* rpc.c: the memory a handler's response lives in (rpc.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"

struct rpc_block {
	struct rpc_block *next;
	void (*fn)(void *);      /* a deferred release, or NULL for memory */
	void *p;
	max_align_t data[];
};

void *rpc_alloc(struct rpc_call *c, size_t n)
{
	struct rpc_block *b;

	if (n > SIZE_MAX - sizeof(*b) || (b = calloc(1, sizeof(*b) + n)) == NULL) {
		c->oom = true;
		return NULL;
	}
	b->next = c->mem;
	c->mem = b;
	return b->data;
}

void *rpc_array(struct rpc_call *c, size_t n, size_t elem)
{
	if (elem != 0 && n > SIZE_MAX / elem) {
		c->oom = true;
		return NULL;
	}
	return rpc_alloc(c, n * elem);
}

char *rpc_strdup(struct rpc_call *c, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	char *d = rpc_alloc(c, n + 1);

	if (d == NULL)
		return rpc_str("");
	if (n > 0)
		memcpy(d, s, n);
	return d;
}

void *rpc_msg(struct rpc_call *c, const ProtobufCMessageDescriptor *d)
{
	void *m = rpc_alloc(c, d->sizeof_message);

	if (m != NULL)
		d->message_init(m);
	return m;
}

void rpc_defer(struct rpc_call *c, void (*fn)(void *), void *p)
{
	struct rpc_block *b = calloc(1, sizeof(*b));

	if (b == NULL) {
		c->oom = true;
		fn(p);
		return;
	}
	b->fn = fn;
	b->p = p;
	b->next = c->mem;
	c->mem = b;
}

void rpc_call_release(struct rpc_call *c)
{
	while (c->mem != NULL) {
		struct rpc_block *b = c->mem;

		c->mem = b->next;
		if (b->fn != NULL)
			b->fn(b->p);
		free(b);
	}
	c->resp = NULL;
}
