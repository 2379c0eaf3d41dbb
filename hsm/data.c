/* data.c: small named data objects in the token (CKO_DATA, PKCS#11 v2.40
 * §4.5): private token objects keyholdd keeps out of the reach of whoever
 * can write its state directory, e.g. the audit log's anchor. */
#include <stdint.h>
#include <string.h>

#include "hsm_int.h"
#include "kh_log.h"

#define HSM_DATA_APP "keyhold"

static CK_RV hsm_data_find(struct hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *found,
			   CK_ULONG max, CK_ULONG *n)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_LABEL, (void *)(uintptr_t)label, strlen(label) },
	};
	CK_RV rv, rv2;

	*n = 0;
	rv = h->f->C_FindObjectsInit(s, tmpl, sizeof(tmpl) / sizeof(tmpl[0]));
	if (rv != CKR_OK)
		return rv;
	rv = h->f->C_FindObjects(s, found, max, n);
	rv2 = h->f->C_FindObjectsFinal(s);
	return rv != CKR_OK ? rv : rv2;
}

enum kh_err hsm_data_read(struct hsm *h, const char *label, uint8_t *buf, size_t bufsz, size_t *len,
			  struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_sess s;
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	CK_RV rv = CKR_OK;
	CK_ATTRIBUTE a = { CKA_VALUE, buf, (CK_ULONG)bufsz };
	bool in_session = false;

	KH_TRY(hsm_begin(h, &s, e));
	in_session = true;
	rv = hsm_data_find(h, s.h, label, found, 2, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "searching data objects", label));
	KH_ENSURE(n > 0, kh_err_set(e, KH_E_NOT_FOUND, "the token holds no data object '%s'", label));
	KH_ENSURE(n == 1, kh_err_set(e, KH_E_FAILED_PRECONDITION, "the token holds several data objects '%s'", label));
	rv = h->f->C_GetAttributeValue(s.h, found[0], &a, 1);
	KH_ENSURE(rv == CKR_OK && a.ulValueLen != CK_UNAVAILABLE_INFORMATION,
		  hsm_rv_err(e, rv == CKR_OK ? CKR_ATTRIBUTE_TYPE_INVALID : rv, "reading the data object", label));
	*len = (size_t)a.ulValueLen;
out:
	if (in_session)
		hsm_end(h, &s, rv);
	return hsm_gone_err(h, r, rv, e);
}

enum kh_err hsm_data_write(struct hsm *h, const char *label, const uint8_t *data, size_t len, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_sess s;
	CK_OBJECT_HANDLE found[4], created = CK_INVALID_HANDLE;
	CK_ULONG n = 0, i;
	CK_RV rv = CKR_OK;
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_LABEL, (void *)(uintptr_t)label, strlen(label) },
		{ CKA_APPLICATION, (void *)(uintptr_t)HSM_DATA_APP, sizeof(HSM_DATA_APP) - 1 },
		{ CKA_VALUE, (void *)(uintptr_t)data, (CK_ULONG)len },
	};
	bool in_session = false;

	KH_TRY(hsm_begin(h, &s, e));
	in_session = true;
	rv = hsm_data_find(h, s.h, label, found, 4, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "searching data objects", label));
	/* Replaced, never changed in place: tpm2-pkcs11 accepts a
	 * C_SetAttributeValue of CKA_VALUE (and reads it back in the same
	 * process) without keeping it. Removed first, so that one object
	 * holds the label; a crash in between leaves none (a reader then
	 * falls back on its other copies). */
	for (i = 0; i < n; i++) {
		rv = h->f->C_DestroyObject(s.h, found[i]);
		KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "replacing the data object", label));
	}
	rv = h->f->C_CreateObject(s.h, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &created);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "creating the data object", label));
out:
	if (in_session)
		hsm_end(h, &s, rv);
	return hsm_gone_err(h, r, rv, e);
}

enum kh_err hsm_data_delete(struct hsm *h, const char *label, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_sess s;
	CK_OBJECT_HANDLE found[4];
	CK_ULONG n = 0, i;
	CK_RV rv = CKR_OK;
	bool in_session = false;

	KH_TRY(hsm_begin(h, &s, e));
	in_session = true;
	rv = hsm_data_find(h, s.h, label, found, 4, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "searching data objects", label));
	for (i = 0; i < n && rv == CKR_OK; i++)
		rv = h->f->C_DestroyObject(s.h, found[i]);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "deleting the data object", label));
out:
	if (in_session)
		hsm_end(h, &s, rv);
	return hsm_gone_err(h, r, rv, e);
}
