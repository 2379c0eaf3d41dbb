/* kh_util: small helpers shared by every module: hex, time, bounded copy. */
#ifndef KH_UTIL_H
#define KH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kh_text.h"

#include "kh_err.h"

/* Lower-case hex of in into out (outsz >= 2*len+1). Truncates safely. */
void kh_hex(const uint8_t *in, size_t len, char *out, size_t outsz);
/* The value of one hex digit (either case), or -1. */
int kh_hexval(char c);
/* Parses hex (no separators, or ':' separated); 0 on success. */
int kh_unhex(const char *in, uint8_t *out, size_t outsz, size_t *outlen) KH_WUR;

/* Copies src into dst of size dstsz, always NUL-terminated; returns false
 * when src did not fit (dst then holds the truncated prefix). */
bool kh_strlcpy(char *dst, const char *src, size_t dstsz);
/* Copies a blank-padded PKCS#11 field, trimming trailing blanks. */
void kh_copy_padded(char *dst, size_t dstsz, const unsigned char *src, size_t srclen);

uint64_t kh_now_mono_us(void);
uint64_t kh_now_real_s(void);

/* Splits "HOST:PORT" at the last ':' into host (brackets of "[v6]:PORT"
 * removed) and port; the host may be empty. 0 on success, -1 without a ':'
 * or when a part does not fit. */
int kh_split_hostport(const char *s, char *host, size_t hostsz, char *port, size_t portsz) KH_WUR;

#endif
