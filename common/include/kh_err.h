/* kh_err: the one error type of keyhold. Values are the negated gRPC
 * canonical status codes, so the wire status is -err and back. */
#ifndef KH_ERR_H
#define KH_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* enum kh_err, KH_WUR and kh_err_name() are the public API's
 * (client/include/keyhold/keyhold.h): one definition for the tree. */
#include "keyhold/keyhold.h"

#if defined(__GNUC__) || defined(__clang__)
#define KH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define KH_PRINTF(f, a)
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define KH_ERR_MSG_MAX 512

/* An error with the message a person can act on. Every fallible function
 * that can explain itself takes one of these as its last argument. */
struct kh_errbuf {
	enum kh_err code;
	char msg[KH_ERR_MSG_MAX];
};

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
