/* kh_err: the one error type of keyhold. Values are the negated gRPC
 * canonical status codes, so the wire status is -err and back. */
#ifndef KH_ERR_H
#define KH_ERR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define KH_WUR __attribute__((warn_unused_result))
#define KH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define KH_WUR
#define KH_PRINTF(f, a)
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum kh_err {
	KH_OK = 0,
	KH_E_CANCELLED = -1,
	KH_E_UNKNOWN = -2,
	KH_E_INVALID_ARGUMENT = -3,
	KH_E_DEADLINE_EXCEEDED = -4,
	KH_E_NOT_FOUND = -5,
	KH_E_ALREADY_EXISTS = -6,
	KH_E_PERMISSION_DENIED = -7,
	KH_E_RESOURCE_EXHAUSTED = -8,
	KH_E_FAILED_PRECONDITION = -9,
	KH_E_ABORTED = -10,
	KH_E_OUT_OF_RANGE = -11,
	KH_E_UNIMPLEMENTED = -12,
	KH_E_INTERNAL = -13,
	KH_E_UNAVAILABLE = -14,
	KH_E_DATA_LOSS = -15,
	KH_E_UNAUTHENTICATED = -16,
};

#define KH_ERR_MSG_MAX 512

/* An error with the message a person can act on. Every fallible function
 * that can explain itself takes one of these as its last argument. */
struct kh_errbuf {
	enum kh_err code;
	char msg[KH_ERR_MSG_MAX];
};

/* "OK", "INVALID_ARGUMENT", ...; never NULL ("UNKNOWN" for junk). */
const char *kh_err_name(int err);
/* Parses "INVALID_ARGUMENT" etc.; returns KH_E_UNKNOWN for anything else. */
enum kh_err kh_err_from_name(const char *name);

/* Records code and message in e (e may be NULL) and returns code, so that
 * `return kh_err_set(e, KH_E_NOT_FOUND, "key %s", n);` reads naturally.
 * The first message set wins: callers up the stack do not overwrite the
 * specific reason with a general one. */
enum kh_err kh_err_set(struct kh_errbuf *e, enum kh_err code, const char *fmt, ...)
	KH_PRINTF(3, 4);
enum kh_err kh_err_vset(struct kh_errbuf *e, enum kh_err code, const char *fmt, va_list ap)
	KH_PRINTF(3, 0);
void kh_err_clear(struct kh_errbuf *e);

/* gcc ignores a (void) cast on a warn_unused_result call; this does not. */
static inline void kh_ignore(int r) { (void)r; }

/* Control flow for the `goto out` idiom. Both assume `int r` (or enum
 * kh_err r) and a label `out:` in the function. No macro hides a return. */
#define KH_TRY(expr) do { if ((r = (expr)) != KH_OK) goto out; } while (0)
#define KH_ENSURE(cond, err) do { if (!(cond)) { r = (err); goto out; } } while (0)

#ifdef __cplusplus
}
#endif
#endif
