/* kh_security: principal syntax and the clear functions of the security
 * structs (kh_security.h). */
#include "kh_types.h"

#include <stdlib.h>
#include <string.h>

bool kh_principal_valid(const char *s)
{
	static const char *const kinds[] = { "uid:", "gid:", "user:", "group:", "cert:" };
	size_t i, n, k;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > KH_PRINCIPAL_MAX)
		return false;
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (strncmp(s, kinds[k], strlen(kinds[k])) == 0)
			break;
	if (k == sizeof(kinds) / sizeof(kinds[0]) || n == strlen(kinds[k]))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == ',')
			return false;
	return true;
}

