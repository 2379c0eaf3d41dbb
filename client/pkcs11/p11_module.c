/* p11_module.c: libkeyhold-pkcs11.so's Cryptoki entry points (PKCS#11
 * v2.40, C_GetFunctionList the only exported symbol): one slot holding one
 * token, the keyholdd this process reaches (docs/PKCS11.md); sessions,
 * login (a PIN is accepted and ignored: the principal is the Unix peer or
 * the TLS client certificate), object search and attributes, signing.
 * Every other function answers CKR_FUNCTION_NOT_SUPPORTED. Thread-safe
 * with OS locking; a forked child makes its own connections. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11.h"

#define P11_EXPORT __attribute__((visibility("default")))

struct p11_mod p11;

static void pad(CK_UTF8CHAR *dst, size_t n, const char *src)
{
	size_t l = strnlen(src, n);

	memset(dst, ' ', n);
	memcpy(dst, src, l);
}

/* Every call but C_Initialize/C_GetFunctionList starts here. */
static CK_RV enter(void)
{
	pid_t pid;

	if (!p11.initialized)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	pid = getpid();
	if (pid != p11.pid) {
		/* fork(): the parent's connections are not ours to use. */
		pthread_mutex_lock(&p11.lock);
		if (p11.pid != pid) {
			p11.pid = pid;
			p11_conn_forked();
		}
		pthread_mutex_unlock(&p11.lock);
	}
	return CKR_OK;
}

/* With p11.lock held. */
static struct p11_sess *sess_find(CK_SESSION_HANDLE h)
{
	struct p11_sess *s;

	for (s = p11.sess; s != NULL; s = s->next)
		if (s->h == h)
			return s;
	return NULL;
}

/* enter() + p11.lock + the session; on failure the lock is not held. */
static CK_RV sess_lock(CK_SESSION_HANDLE h, struct p11_sess **out)
{
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&p11.lock);
	if ((*out = sess_find(h)) == NULL) {
		pthread_mutex_unlock(&p11.lock);
		return CKR_SESSION_HANDLE_INVALID;
	}
	return CKR_OK;
}

static void sess_free(struct p11_sess *s)
{
	p11_op_clear(&s->op);
	free(s->found);
	free(s);
}

/* ---- general ---- */

static CK_RV C_Initialize_(CK_VOID_PTR init_args)
{
	const CK_C_INITIALIZE_ARGS *a = init_args;
	CK_RV rv;

	if (p11.initialized)
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	if (a != NULL) {
		int fns = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL) + (a->LockMutex != NULL) +
			  (a->UnlockMutex != NULL);

		if (a->pReserved != NULL || (fns != 0 && fns != 4))
			return CKR_ARGUMENTS_BAD;
		/* Only the OS's locks (pthreads) are used (v2.40 5.4). */
		if (fns == 4 && !(a->flags & CKF_OS_LOCKING_OK))
			return CKR_CANT_LOCK;
	}
	memset(&p11, 0, sizeof(p11));
	if (pthread_mutex_init(&p11.lock, NULL) != 0)
		return CKR_HOST_MEMORY;
	if (pthread_mutex_init(&p11.pool_lock, NULL) != 0) {
		pthread_mutex_destroy(&p11.lock);
		return CKR_HOST_MEMORY;
	}
	if ((rv = p11_conn_init()) != CKR_OK) {
		pthread_mutex_destroy(&p11.pool_lock);
		pthread_mutex_destroy(&p11.lock);
		return rv;
	}
	p11.pid = getpid();
	p11.initialized = true;
	return CKR_OK;
}

static CK_RV C_Finalize_(CK_VOID_PTR reserved)
{
	struct p11_sess *s;
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	if (reserved != NULL)
		return CKR_ARGUMENTS_BAD;
	while ((s = p11.sess) != NULL) {
		p11.sess = s->next;
		sess_free(s);
	}
	p11_objs_free(p11.objs);
	p11_conn_fini();
	pthread_mutex_destroy(&p11.pool_lock);
	pthread_mutex_destroy(&p11.lock);
	memset(&p11, 0, sizeof(p11));
	return CKR_OK;
}

static CK_RV C_GetInfo_(CK_INFO_PTR info)
{
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(info, 0, sizeof(*info));
	info->cryptokiVersion.major = 2;
	info->cryptokiVersion.minor = 40;
	pad(info->manufacturerID, sizeof(info->manufacturerID), "keyhold");
	pad(info->libraryDescription, sizeof(info->libraryDescription), "keyhold PKCS#11 module");
	info->libraryVersion.major = 0;
	info->libraryVersion.minor = 1;
	return CKR_OK;
}

/* ---- slot and token ---- */

static CK_RV C_GetSlotList_(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_ULONG n = 1;
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	/* The token is "present" while keyholdd answers. */
	if (present && p11_status() != CKR_OK)
		n = 0;
	if (list != NULL) {
		if (*count < n) {
			*count = n;
			return CKR_BUFFER_TOO_SMALL;
		}
		if (n == 1)
			list[0] = P11_SLOT_ID;
	}
	*count = n;
	return CKR_OK;
}

static CK_RV C_GetSlotInfo_(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	bool present;
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	if (slot != P11_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	present = p11_status() == CKR_OK;
	memset(info, 0, sizeof(*info));
	pad(info->slotDescription, sizeof(info->slotDescription), "keyholdd");
	pad(info->manufacturerID, sizeof(info->manufacturerID), "keyhold");
	info->flags = CKF_REMOVABLE_DEVICE | (present ? CKF_TOKEN_PRESENT : 0);
	info->hardwareVersion.major = 0;
	info->firmwareVersion.major = 0;
	return CKR_OK;
}

static CK_RV C_GetTokenInfo_(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	if (slot != P11_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = p11_status()) != CKR_OK)
		return rv;
	memset(info, 0, sizeof(*info));
	pthread_mutex_lock(&p11.lock);
	pad(info->label, sizeof(info->label), p11.tok.label);
	pad(info->manufacturerID, sizeof(info->manufacturerID), p11.tok.manufacturer);
	pad(info->model, sizeof(info->model), p11.tok.model);
	pad(info->serialNumber, sizeof(info->serialNumber), p11.tok.serial);
	/* No CKF_LOGIN_REQUIRED: keyholdd knows the caller without a PIN. */
	info->flags = CKF_TOKEN_INITIALIZED;
	info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	info->ulSessionCount = p11.n_sess;
	info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
	info->ulRwSessionCount = p11.n_sess;
	info->ulMaxPinLen = 255;
	info->ulMinPinLen = 0;
	info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->hardwareVersion = p11.tok.hw;
	info->firmwareVersion = p11.tok.fw;
	memset(info->utcTime, ' ', sizeof(info->utcTime));
	pthread_mutex_unlock(&p11.lock);
	return CKR_OK;
}

static CK_RV C_GetMechanismList_(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	if (slot != P11_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = p11_refresh(false)) != CKR_OK)
		return rv;
	pthread_mutex_lock(&p11.lock);
	rv = p11_mech_list(list, count);
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

static CK_RV C_GetMechanismInfo_(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	if (slot != P11_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = p11_refresh(false)) != CKR_OK)
		return rv;
	pthread_mutex_lock(&p11.lock);
	rv = p11_mech_info(type, info);
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

/* ---- sessions and login ---- */

static CK_RV C_OpenSession_(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
			    CK_SESSION_HANDLE_PTR out)
{
	struct p11_sess *s;
	CK_RV rv = enter();

	(void)app;
	(void)notify;
	if (rv != CKR_OK)
		return rv;
	if (slot != P11_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!(flags & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	if ((rv = p11_refresh(false)) != CKR_OK)
		return rv;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CKR_HOST_MEMORY;
	s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
	pthread_mutex_lock(&p11.lock);
	if (p11.n_sess >= P11_MAX_SESSIONS) {
		pthread_mutex_unlock(&p11.lock);
		free(s);
		return CKR_SESSION_COUNT;
	}
	s->h = ++p11.next_sess;
	s->next = p11.sess;
	p11.sess = s;
	p11.n_sess++;
	*out = s->h;
	pthread_mutex_unlock(&p11.lock);
	return CKR_OK;
}

static CK_RV C_CloseSession_(CK_SESSION_HANDLE h)
{
	struct p11_sess **pp, *s = NULL;
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&p11.lock);
	for (pp = &p11.sess; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->h == h) {
			s = *pp;
			*pp = s->next;
			p11.n_sess--;
			break;
		}
	}
	/* The login state belongs to the application, not the session
	 * (v2.40 5.6): it ends with the last session. */
	if (p11.n_sess == 0)
		p11.logged_in = false;
	pthread_mutex_unlock(&p11.lock);
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	sess_free(s);
	return CKR_OK;
}

static CK_RV C_CloseAllSessions_(CK_SLOT_ID slot)
{
	struct p11_sess *s;
	CK_RV rv = enter();

	if (rv != CKR_OK)
		return rv;
	if (slot != P11_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	pthread_mutex_lock(&p11.lock);
	s = p11.sess;
	p11.sess = NULL;
	p11.n_sess = 0;
	p11.logged_in = false;
	pthread_mutex_unlock(&p11.lock);
	while (s != NULL) {
		struct p11_sess *next = s->next;

		sess_free(s);
		s = next;
	}
	return CKR_OK;
}

static CK_RV C_GetSessionInfo_(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	struct p11_sess *s;
	bool rw;
	CK_RV rv;

	if (info == NULL)
		return p11.initialized ? CKR_ARGUMENTS_BAD : CKR_CRYPTOKI_NOT_INITIALIZED;
	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	rw = (s->flags & CKF_RW_SESSION) != 0;
	memset(info, 0, sizeof(*info));
	info->slotID = P11_SLOT_ID;
	info->flags = s->flags;
	if (p11.logged_in)
		info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
	else
		info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
	pthread_mutex_unlock(&p11.lock);
	return CKR_OK;
}

/* A PIN is accepted and ignored (docs/PKCS11.md): keyholdd authenticates
 * the connection, and the token never asks for one (no
 * CKF_LOGIN_REQUIRED). C_Login only moves the session state, for
 * applications that log in whatever the flags say. */
static CK_RV C_Login_(CK_SESSION_HANDLE h, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	struct p11_sess *s;
	CK_RV rv;

	(void)pin;
	(void)len;
	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	if (type == CKU_USER)
		rv = p11.logged_in ? CKR_USER_ALREADY_LOGGED_IN : CKR_OK;
	else if (type == CKU_CONTEXT_SPECIFIC)
		rv = CKR_OPERATION_NOT_INITIALIZED; /* no CKA_ALWAYS_AUTHENTICATE key */
	else
		rv = CKR_USER_TYPE_INVALID; /* no security officer: keyhold's admin role is not a PIN */
	if (rv == CKR_OK)
		p11.logged_in = true;
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

static CK_RV C_Logout_(CK_SESSION_HANDLE h)
{
	struct p11_sess *s;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	rv = p11.logged_in ? CKR_OK : CKR_USER_NOT_LOGGED_IN;
	p11.logged_in = false;
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

/* ---- objects ---- */

static CK_RV C_GetObjectSize_(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ULONG_PTR size)
{
	struct p11_sess *s;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	if (p11_obj_find(obj) == NULL)
		rv = CKR_OBJECT_HANDLE_INVALID;
	else if (size == NULL)
		rv = CKR_ARGUMENTS_BAD;
	else
		*size = CK_UNAVAILABLE_INFORMATION;
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

static CK_RV C_GetAttributeValue_(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
	struct p11_sess *s;
	const struct p11_obj *o;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	if ((o = p11_obj_find(obj)) == NULL)
		rv = CKR_OBJECT_HANDLE_INVALID;
	else if (tmpl == NULL && n > 0)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = p11_obj_get_attrs(o, tmpl, n);
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

static CK_RV C_FindObjectsInit_(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
	struct p11_sess *s;
	const struct p11_obj *o;
	size_t cnt = 0;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	rv = s->finding ? CKR_OPERATION_ACTIVE : (tmpl == NULL && n > 0) ? CKR_ARGUMENTS_BAD : CKR_OK;
	pthread_mutex_unlock(&p11.lock);
	if (rv != CKR_OK)
		return rv;
	/* Keys made or granted since the last look appear here. */
	if ((rv = p11_refresh(false)) != CKR_OK)
		return rv == CKR_TOKEN_NOT_PRESENT ? CKR_DEVICE_REMOVED : rv;
	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	for (o = p11.objs; o != NULL; o = o->next)
		cnt++;
	free(s->found);
	s->found = calloc(cnt ? cnt : 1, sizeof(*s->found));
	s->n_found = s->pos = 0;
	if (s->found == NULL) {
		rv = CKR_HOST_MEMORY;
	} else {
		for (o = p11.objs; o != NULL; o = o->next)
			if (p11_obj_match(o, tmpl, n))
				s->found[s->n_found++] = o->h;
		s->finding = true;
	}
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

static CK_RV C_FindObjects_(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count)
{
	struct p11_sess *s;
	CK_ULONG k = 0;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	if (!s->finding) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
	} else if (count == NULL || (out == NULL && max > 0)) {
		rv = CKR_ARGUMENTS_BAD;
	} else {
		while (k < max && s->pos < s->n_found)
			out[k++] = s->found[s->pos++];
		*count = k;
	}
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

static CK_RV C_FindObjectsFinal_(CK_SESSION_HANDLE h)
{
	struct p11_sess *s;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	if (!s->finding) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
	} else {
		free(s->found);
		s->found = NULL;
		s->n_found = s->pos = 0;
		s->finding = false;
	}
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

/* ---- signing ---- */

static CK_RV C_SignInit_(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
	struct p11_sess *s;
	const struct p11_obj *o;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	if (mech == NULL)
		rv = CKR_ARGUMENTS_BAD;
	else if ((o = p11_obj_find(key)) == NULL)
		rv = CKR_KEY_HANDLE_INVALID;
	else
		rv = p11_sign_init(s, mech, o);
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

static CK_RV C_Sign_(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	struct p11_sess *s;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	return p11_sign(s, data, len, sig, sig_len); /* unlocks */
}

static CK_RV C_SignUpdate_(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len)
{
	struct p11_sess *s;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	rv = p11_sign_update(s, part, len);
	pthread_mutex_unlock(&p11.lock);
	return rv;
}

static CK_RV C_SignFinal_(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	struct p11_sess *s;
	CK_RV rv;

	if ((rv = sess_lock(h, &s)) != CKR_OK)
		return rv;
	return p11_sign_final(s, sig, sig_len); /* unlocks */
}

/* ---- parallel functions (v2.40 5.17) ---- */

static CK_RV C_GetFunctionStatus_(CK_SESSION_HANDLE h)
{
	(void)h;
	return p11.initialized ? CKR_FUNCTION_NOT_PARALLEL : CKR_CRYPTOKI_NOT_INITIALIZED;
}

static CK_RV C_CancelFunction_(CK_SESSION_HANDLE h)
{
	(void)h;
	return p11.initialized ? CKR_FUNCTION_NOT_PARALLEL : CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* ---- everything else: not offered ---- */

static CK_RV unsupported(void)
{
	return p11.initialized ? CKR_FUNCTION_NOT_SUPPORTED : CKR_CRYPTOKI_NOT_INITIALIZED;
}

#define P11_UNSUPPORTED(name, args)              \
	static CK_RV name##_ args                \
	{                                        \
		return unsupported();            \
	}

/* C11 needs parameter names in a definition: short ones, marked unused. */
#define U __attribute__((unused))
P11_UNSUPPORTED(C_WaitForSlotEvent, (CK_FLAGS a U, CK_SLOT_ID_PTR b U, CK_VOID_PTR c U))
P11_UNSUPPORTED(C_InitToken, (CK_SLOT_ID a U, CK_UTF8CHAR_PTR b U, CK_ULONG c U, CK_UTF8CHAR_PTR d U))
P11_UNSUPPORTED(C_InitPIN, (CK_SESSION_HANDLE a U, CK_UTF8CHAR_PTR b U, CK_ULONG c U))
P11_UNSUPPORTED(C_SetPIN, (CK_SESSION_HANDLE a U, CK_UTF8CHAR_PTR b U, CK_ULONG c U, CK_UTF8CHAR_PTR d U,
			   CK_ULONG e U))
P11_UNSUPPORTED(C_GetOperationState, (CK_SESSION_HANDLE a U, CK_BYTE_PTR b U, CK_ULONG_PTR c U))
P11_UNSUPPORTED(C_SetOperationState, (CK_SESSION_HANDLE a U, CK_BYTE_PTR b U, CK_ULONG c U,
				      CK_OBJECT_HANDLE d U, CK_OBJECT_HANDLE e U))
P11_UNSUPPORTED(C_CreateObject, (CK_SESSION_HANDLE a U, CK_ATTRIBUTE_PTR b U, CK_ULONG c U,
				 CK_OBJECT_HANDLE_PTR d U))
P11_UNSUPPORTED(C_CopyObject, (CK_SESSION_HANDLE a U, CK_OBJECT_HANDLE b U, CK_ATTRIBUTE_PTR c U, CK_ULONG d U,
			       CK_OBJECT_HANDLE_PTR e U))
P11_UNSUPPORTED(C_DestroyObject, (CK_SESSION_HANDLE a U, CK_OBJECT_HANDLE b U))
P11_UNSUPPORTED(C_SetAttributeValue, (CK_SESSION_HANDLE a U, CK_OBJECT_HANDLE b U, CK_ATTRIBUTE_PTR c U,
				      CK_ULONG d U))
#define P11_UNSUPPORTED_INIT(name) \
	P11_UNSUPPORTED(name, (CK_SESSION_HANDLE a U, CK_MECHANISM_PTR b U, CK_OBJECT_HANDLE c U))
#define P11_UNSUPPORTED_ONESHOT(name) \
	P11_UNSUPPORTED(name, (CK_SESSION_HANDLE a U, CK_BYTE_PTR b U, CK_ULONG c U, CK_BYTE_PTR d U, CK_ULONG_PTR e U))
#define P11_UNSUPPORTED_UPDATE(name) P11_UNSUPPORTED(name, (CK_SESSION_HANDLE a U, CK_BYTE_PTR b U, CK_ULONG c U))
#define P11_UNSUPPORTED_FINAL(name) P11_UNSUPPORTED(name, (CK_SESSION_HANDLE a U, CK_BYTE_PTR b U, CK_ULONG_PTR c U))
P11_UNSUPPORTED_INIT(C_EncryptInit)
P11_UNSUPPORTED_ONESHOT(C_Encrypt)
P11_UNSUPPORTED_ONESHOT(C_EncryptUpdate)
P11_UNSUPPORTED_FINAL(C_EncryptFinal)
P11_UNSUPPORTED_INIT(C_DecryptInit)
P11_UNSUPPORTED_ONESHOT(C_Decrypt)
P11_UNSUPPORTED_ONESHOT(C_DecryptUpdate)
P11_UNSUPPORTED_FINAL(C_DecryptFinal)
P11_UNSUPPORTED(C_DigestInit, (CK_SESSION_HANDLE a U, CK_MECHANISM_PTR b U))
P11_UNSUPPORTED_ONESHOT(C_Digest)
P11_UNSUPPORTED_UPDATE(C_DigestUpdate)
P11_UNSUPPORTED(C_DigestKey, (CK_SESSION_HANDLE a U, CK_OBJECT_HANDLE b U))
P11_UNSUPPORTED_FINAL(C_DigestFinal)
P11_UNSUPPORTED_INIT(C_SignRecoverInit)
P11_UNSUPPORTED_ONESHOT(C_SignRecover)
P11_UNSUPPORTED_INIT(C_VerifyInit)
P11_UNSUPPORTED(C_Verify, (CK_SESSION_HANDLE a U, CK_BYTE_PTR b U, CK_ULONG c U, CK_BYTE_PTR d U, CK_ULONG e U))
P11_UNSUPPORTED_UPDATE(C_VerifyUpdate)
P11_UNSUPPORTED_UPDATE(C_VerifyFinal)
P11_UNSUPPORTED_INIT(C_VerifyRecoverInit)
P11_UNSUPPORTED_ONESHOT(C_VerifyRecover)
P11_UNSUPPORTED_ONESHOT(C_DigestEncryptUpdate)
P11_UNSUPPORTED_ONESHOT(C_DecryptDigestUpdate)
P11_UNSUPPORTED_ONESHOT(C_SignEncryptUpdate)
P11_UNSUPPORTED_ONESHOT(C_DecryptVerifyUpdate)
P11_UNSUPPORTED(C_GenerateKey, (CK_SESSION_HANDLE a U, CK_MECHANISM_PTR b U, CK_ATTRIBUTE_PTR c U, CK_ULONG d U,
				CK_OBJECT_HANDLE_PTR e U))
P11_UNSUPPORTED(C_GenerateKeyPair, (CK_SESSION_HANDLE a U, CK_MECHANISM_PTR b U, CK_ATTRIBUTE_PTR c U,
				    CK_ULONG d U, CK_ATTRIBUTE_PTR e U, CK_ULONG f U, CK_OBJECT_HANDLE_PTR g U,
				    CK_OBJECT_HANDLE_PTR i U))
P11_UNSUPPORTED(C_WrapKey, (CK_SESSION_HANDLE a U, CK_MECHANISM_PTR b U, CK_OBJECT_HANDLE c U,
			    CK_OBJECT_HANDLE d U, CK_BYTE_PTR e U, CK_ULONG_PTR f U))
P11_UNSUPPORTED(C_UnwrapKey, (CK_SESSION_HANDLE a U, CK_MECHANISM_PTR b U, CK_OBJECT_HANDLE c U, CK_BYTE_PTR d U,
			      CK_ULONG e U, CK_ATTRIBUTE_PTR f U, CK_ULONG g U, CK_OBJECT_HANDLE_PTR i U))
P11_UNSUPPORTED(C_DeriveKey, (CK_SESSION_HANDLE a U, CK_MECHANISM_PTR b U, CK_OBJECT_HANDLE c U,
			      CK_ATTRIBUTE_PTR d U, CK_ULONG e U, CK_OBJECT_HANDLE_PTR f U))
P11_UNSUPPORTED(C_SeedRandom, (CK_SESSION_HANDLE a U, CK_BYTE_PTR b U, CK_ULONG c U))
P11_UNSUPPORTED(C_GenerateRandom, (CK_SESSION_HANDLE a U, CK_BYTE_PTR b U, CK_ULONG c U))
#undef U

static CK_RV C_GetFunctionList_(CK_FUNCTION_LIST_PTR_PTR list);

#define F(name) .name = name##_
static CK_FUNCTION_LIST p11_functions = {
	.version = { 2, 40 },
	F(C_Initialize), F(C_Finalize), F(C_GetInfo), F(C_GetFunctionList), F(C_GetSlotList), F(C_GetSlotInfo),
	F(C_GetTokenInfo), F(C_GetMechanismList), F(C_GetMechanismInfo), F(C_InitToken), F(C_InitPIN),
	F(C_SetPIN), F(C_OpenSession), F(C_CloseSession), F(C_CloseAllSessions), F(C_GetSessionInfo),
	F(C_GetOperationState), F(C_SetOperationState), F(C_Login), F(C_Logout), F(C_CreateObject),
	F(C_CopyObject), F(C_DestroyObject), F(C_GetObjectSize), F(C_GetAttributeValue), F(C_SetAttributeValue),
	F(C_FindObjectsInit), F(C_FindObjects), F(C_FindObjectsFinal), F(C_EncryptInit), F(C_Encrypt),
	F(C_EncryptUpdate), F(C_EncryptFinal), F(C_DecryptInit), F(C_Decrypt), F(C_DecryptUpdate),
	F(C_DecryptFinal), F(C_DigestInit), F(C_Digest), F(C_DigestUpdate), F(C_DigestKey), F(C_DigestFinal),
	F(C_SignInit), F(C_Sign), F(C_SignUpdate), F(C_SignFinal), F(C_SignRecoverInit), F(C_SignRecover),
	F(C_VerifyInit), F(C_Verify), F(C_VerifyUpdate), F(C_VerifyFinal), F(C_VerifyRecoverInit),
	F(C_VerifyRecover), F(C_DigestEncryptUpdate), F(C_DecryptDigestUpdate), F(C_SignEncryptUpdate),
	F(C_DecryptVerifyUpdate), F(C_GenerateKey), F(C_GenerateKeyPair), F(C_WrapKey), F(C_UnwrapKey),
	F(C_DeriveKey), F(C_SeedRandom), F(C_GenerateRandom), F(C_GetFunctionStatus), F(C_CancelFunction),
	F(C_WaitForSlotEvent),
};
#undef F

static CK_RV C_GetFunctionList_(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = &p11_functions;
	return CKR_OK;
}

/* The module's one exported symbol. */
P11_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	return C_GetFunctionList_(list);
}
