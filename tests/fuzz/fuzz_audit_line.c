/* fuzz_audit_line.c: one audit log line as audit verify and verify
 * --cluster read it (service/audit/audit.c, audit_parse): the log file and
 * the state database's checkpoint rows can be written by others, so any
 * bytes must parse or be refused without a crash. A line that parses has a
 * sequence number, and a checkpoint signed off the request path names an
 * earlier record (0 < at < seq). */
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seq = 0, at = 0;
	bool ckpt = false;
	char *line;

	/* Without a terminator after it, as the reader hands lines over. */
	line = malloc(size ? size : 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	if (audit_line_parse(line, size, &seq, &ckpt, &at)) {
		if (seq == 0 || (at != 0 && (!ckpt || at >= seq)))
			abort();
	}
	free(line);
	return 0;
}
