/* kh_err: names of the gRPC canonical codes and the message buffer. */
#include "kh_err.h"

#include <stdio.h>
#include <string.h>

#include "kh_text.h"

static const char *const kh_err_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};
#define KH_ERR_COUNT (sizeof(kh_err_names) / sizeof(kh_err_names[0]))

const char *kh_err_name(int err)
{
	unsigned idx;

	if (err > 0 || (unsigned)-err >= KH_ERR_COUNT)
		return "UNKNOWN";
	idx = (unsigned)-err;
	return kh_err_names[idx];
}

enum kh_err kh_err_from_name(const char *name)
{
	size_t i;

	if (name == NULL)
		return KH_E_UNKNOWN;
	for (i = 0; i < KH_ERR_COUNT; i++)
		if (strcmp(name, kh_err_names[i]) == 0)
			return (enum kh_err)-(int)i;
	return KH_E_UNKNOWN;
}

enum kh_err kh_err_vset(struct kh_errbuf *e, enum kh_err code, const char *fmt, va_list ap)
{
	char tmp[2 * KH_ERR_MSG_MAX];

	if (e == NULL || code == KH_OK)
		return code;
	if (e->code != KH_OK)
		return code; /* keep the first, most specific reason */
	e->code = code;
	/* Formatted whole, then cut at a character boundary: the message may
	 * quote what a client sent, and it travels in Status.message, which
	 * must be valid UTF-8. */
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	kh_utf8_sanitize(e->msg, sizeof(e->msg), tmp);
	return code;
}

enum kh_err kh_err_set(struct kh_errbuf *e, enum kh_err code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = kh_err_vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

void kh_err_clear(struct kh_errbuf *e)
{
	if (e == NULL)
		return;
	e->code = KH_OK;
	e->msg[0] = '\0';
}
