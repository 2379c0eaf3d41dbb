/* kh_util: hex, time, bounded string copies and number parsing. */
#include "kh_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void kh_hex(const uint8_t *in, size_t len, char *out, size_t outsz)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (outsz == 0)
		return;
	for (i = 0; i < len && 2 * i + 2 < outsz; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * i] = '\0';
}

int kh_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int kh_unhex(const char *in, uint8_t *out, size_t outsz, size_t *outlen)
{
	size_t n = 0;

	while (*in != '\0') {
		int hi, lo;

		if (*in == ':') {
			in++;
			continue;
		}
		hi = kh_hexval(in[0]);
		if (hi < 0 || in[1] == '\0')
			return -1;
		lo = kh_hexval(in[1]);
		if (lo < 0 || n >= outsz)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		in += 2;
	}
	*outlen = n;
	return 0;
}

bool kh_strlcpy(char *dst, const char *src, size_t dstsz)
{
	size_t n;

	if (dstsz == 0)
		return false;
	n = strlen(src);
	if (n >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

void kh_copy_padded(char *dst, size_t dstsz, const unsigned char *src, size_t srclen)
{
	size_t n = srclen;

	if (dstsz == 0)
		return;
	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	if (n > dstsz - 1)
		n = dstsz - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

uint64_t kh_now_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t kh_now_real_s(void)
{
	return (uint64_t)time(NULL);
}

int kh_split_hostport(const char *s, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (colon == NULL || (size_t)(colon - s) >= hostsz || !kh_strlcpy(port, colon + 1, portsz))
		return -1;
	hl = (size_t)(colon - s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	return 0;
}

