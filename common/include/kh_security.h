/* kh_security: how principals are written in grants and [access]
 * (DESIGN §9). */
#ifndef KH_SECURITY_H
#define KH_SECURITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "uid:1001", "gid:50", "user:app", "group:app", "cert:spiffe://x/y". */
#define KH_PRINCIPAL_MAX 255

/* True for a principal string the service can parse: kind:value with a
 * known kind and a value of printable ASCII without ',' or blanks. */
bool kh_principal_valid(const char *s);

#ifdef __cplusplus
}
#endif
#endif
