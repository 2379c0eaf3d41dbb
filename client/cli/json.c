/* json.c: a small JSON writer for --json output. The document is built in
 * memory and written whole, so an error mid-way never leaves half a
 * document on stdout. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CLI_JSON_DEPTH 32

struct cli_json {
	FILE *out;
	FILE *mem;
	char *buf;
	size_t len;
	int depth;
	bool first[CLI_JSON_DEPTH];
};

struct cli_json *cli_json_new(FILE *f)
{
	struct cli_json *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->out = f;
	j->mem = open_memstream(&j->buf, &j->len);
	if (j->mem == NULL) {
		free(j);
		return NULL;
	}
	j->first[0] = true;
	return j;
}

void cli_json_discard(struct cli_json *j)
{
	if (j == NULL)
		return;
	fclose(j->mem);
	free(j->buf);
	free(j);
}

void cli_json_free(struct cli_json *j)
{
	if (j == NULL)
		return;
	fflush(j->mem);
	if (j->len > 0) {
		fwrite(j->buf, 1, j->len, j->out);
		fputc('\n', j->out);
		fflush(j->out);
	}
	cli_json_discard(j);
}

/* RFC 8259 §7: '"', '\\' and the control characters escaped (DEL too,
 * for terminals); text that is not UTF-8 (a label, subject or file name
 * may hold any bytes) has each offending byte replaced by U+FFFD, so the
 * document is always valid JSON. */
void cli_json_escape(FILE *f, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;

	fputc('"', f);
	while (i < n) {
		unsigned char c = u[i];

		if (c >= 0x80) {
			k = kh_utf8_char(u + i, n - i);
			if (k == 0) {
				fputs("\\ufffd", f);
				i++;
			} else {
				fwrite(u + i, 1, k, f);
				i += k;
			}
			continue;
		}
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
		i++;
	}
	fputc('"', f);
}

static void cli_json_key(struct cli_json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->mem);
	j->first[j->depth] = false;
	if (key != NULL) {
		cli_json_escape(j->mem, key, strlen(key));
		fputc(':', j->mem);
	}
}

static void cli_json_open(struct cli_json *j, const char *key, char ch)
{
	if (j == NULL)
		return;
	cli_json_key(j, key);
	fputc(ch, j->mem);
	if (j->depth + 1 < CLI_JSON_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

static void cli_json_close(struct cli_json *j, char ch)
{
	if (j == NULL)
		return;
	fputc(ch, j->mem);
	if (j->depth > 0)
		j->depth--;
}

void cli_json_obj(struct cli_json *j, const char *key) { cli_json_open(j, key, '{'); }
void cli_json_end_obj(struct cli_json *j) { cli_json_close(j, '}'); }
void cli_json_arr(struct cli_json *j, const char *key) { cli_json_open(j, key, '['); }
void cli_json_end_arr(struct cli_json *j) { cli_json_close(j, ']'); }

void cli_json_strn(struct cli_json *j, const char *key, const char *v, size_t n)
{
	if (j == NULL)
		return;
	cli_json_key(j, key);
	cli_json_escape(j->mem, v, n);
}

void cli_json_str(struct cli_json *j, const char *key, const char *v)
{
	if (v == NULL)
		v = "";
	cli_json_strn(j, key, v, strlen(v));
}

void cli_json_u64(struct cli_json *j, const char *key, uint64_t v)
{
	if (j == NULL)
		return;
	cli_json_key(j, key);
	fprintf(j->mem, "%" PRIu64, v);
}

void cli_json_i64(struct cli_json *j, const char *key, int64_t v)
{
	if (j == NULL)
		return;
	cli_json_key(j, key);
	fprintf(j->mem, "%" PRId64, v);
}

void cli_json_bool(struct cli_json *j, const char *key, bool v)
{
	if (j == NULL)
		return;
	cli_json_key(j, key);
	fputs(v ? "true" : "false", j->mem);
}

void cli_json_hex(struct cli_json *j, const char *key, const uint8_t *v, size_t n)
{
	size_t i;

	if (j == NULL)
		return;
	cli_json_key(j, key);
	fputc('"', j->mem);
	for (i = 0; i < n; i++)
		fprintf(j->mem, "%02x", v[i]);
	fputc('"', j->mem);
}
