/* fuzz_p11_objects.c: libkeyhold-pkcs11.so's handling of keyholdd's bytes
 * (client/pkcs11): byte 0 % 3 selects a SubjectPublicKeyInfo (ListKeys)
 * made into key objects, a certificate (ExportTrustpoint) made into a
 * certificate object, or a DER ECDSA signature (Sign) turned into r || s;
 * every object built then answers C_GetAttributeValue for each of its
 * attributes (whole, sized, short buffer) and matches itself. */
#include <stdlib.h>
#include <string.h>

#include "p11.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const struct p11_obj *o)
{
	size_t i;

	for (; o != NULL; o = o->next) {
		for (i = 0; i < o->n_attrs; i++) {
			const struct p11_attr *a = &o->attrs[i];
			uint8_t *buf = malloc(a->len + 1);
			CK_ATTRIBUTE t = { a->type, NULL, 0 };

			if (buf == NULL)
				return;
			if (p11_obj_get_attrs(o, &t, 1) != CKR_OK || t.ulValueLen != a->len)
				abort();
			t.pValue = buf;
			if (p11_obj_get_attrs(o, &t, 1) != CKR_OK || memcmp(buf, a->val, a->len) != 0)
				abort();
			if (a->len > 0) {
				t.ulValueLen = a->len - 1;
				if (p11_obj_get_attrs(o, &t, 1) != CKR_BUFFER_TOO_SMALL ||
				    t.ulValueLen != CK_UNAVAILABLE_INFORMATION)
					abort();
			}
			free(buf);
		}
		if (!p11_obj_match(o, NULL, 0))
			abort();
		{
			CK_ATTRIBUTE all[64];
			CK_ULONG n = 0;

			for (i = 0; i < o->n_attrs && n < 64; i++, n++) {
				all[n].type = o->attrs[i].type;
				all[n].pValue = o->attrs[i].val;
				all[n].ulValueLen = o->attrs[i].len;
			}
			if (!p11_obj_match(o, all, n))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t id[] = { 1, 2, 3, 4 };
	struct p11_attr ida = { CKA_ID, (void *)(uintptr_t)id, sizeof(id) };
	struct p11_obj *list = NULL;
	uint8_t rs[2 * 66];
	size_t halves[] = { 32, 48, 66 };

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (p11_key_objs("fuzz", id, sizeof(id), data + 1, size - 1, &list) == CKR_OK)
			exercise(list);
		break;
	case 1:
		if (p11_cert_obj("fuzz", &ida, data + 1, size - 1, &list) == CKR_OK)
			exercise(list);
		break;
	default:
		if (p11_ecdsa_raw(data + 1, size - 1, rs, halves[(data[0] / 3) % 3]) != CKR_OK)
			memset(rs, 0, sizeof(rs));
		break;
	}
	p11_objs_free(list);
	return 0;
}
