/* kh_shim.c: a fault-injecting PKCS#11 module for the FIPS tests. It
 * dlopens the real module (KH_SHIM_MODULE, default SoftHSM2) and forwards
 * every call through its function list, except that on request it flips a
 * bit of C_Sign output, repeats C_GenerateRandom blocks, or reports
 * CKF_ERROR_STATE (and CKR_FIPS_SELF_TEST_FAILED) like a token that failed
 * its own self-tests. A test tool only: never built into keyholdd.
 *
 * Requests: the environment (KH_SHIM_FLIP_SIGN=1, KH_SHIM_REPEAT_RANDOM=1,
 * KH_SHIM_ERROR_STATE=1), or words in the file KH_SHIM_FLAG_FILE names
 * ("flip_sign", "repeat_random", "error_state"), read on every call so a
 * test can arm a fault after start-up. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

/* p11-kit's header carries the pre-3.0 value; PKCS#11 3.0 §5.1 says 0x1B6. */
#undef CKR_FIPS_SELF_TEST_FAILED
#define CKR_FIPS_SELF_TEST_FAILED 0x1B6UL
/* PKCS#11 3.0 §5.5 token flag; p11-kit 0.24 does not define it. */
#ifndef CKF_ERROR_STATE
#define CKF_ERROR_STATE 0x01000000UL
#endif

enum { SHIM_FLIP_SIGN = 1, SHIM_REPEAT_RANDOM = 2, SHIM_ERROR_STATE = 4 };

static pthread_mutex_t shim_lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST_PTR shim_real;
static CK_FUNCTION_LIST shim_list;
static unsigned char shim_saved[1024];
static CK_ULONG shim_saved_len;

static unsigned shim_env(const char *name, unsigned bit)
{
	const char *v = getenv(name);

	return v != NULL && strcmp(v, "1") == 0 ? bit : 0;
}

/* The faults requested now. */
static unsigned shim_faults(void)
{
	unsigned f = shim_env("KH_SHIM_FLIP_SIGN", SHIM_FLIP_SIGN) |
		     shim_env("KH_SHIM_REPEAT_RANDOM", SHIM_REPEAT_RANDOM) |
		     shim_env("KH_SHIM_ERROR_STATE", SHIM_ERROR_STATE);
	const char *path = getenv("KH_SHIM_FLAG_FILE");
	char buf[256];
	size_t n;
	FILE *fp;

	if (path == NULL || (fp = fopen(path, "re")) == NULL)
		return f;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	if (strstr(buf, "flip_sign") != NULL)
		f |= SHIM_FLIP_SIGN;
	if (strstr(buf, "repeat_random") != NULL)
		f |= SHIM_REPEAT_RANDOM;
	if (strstr(buf, "error_state") != NULL)
		f |= SHIM_ERROR_STATE;
	return f;
}

static CK_RV shim_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv = shim_real->C_GetTokenInfo(slot, info);

	if (rv == CKR_OK && (shim_faults() & SHIM_ERROR_STATE))
		info->flags |= CKF_ERROR_STATE;
	return rv;
}

static CK_RV shim_C_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	if (shim_faults() & SHIM_ERROR_STATE)
		return CKR_FIPS_SELF_TEST_FAILED;
	return shim_real->C_SignInit(s, m, key);
}

static CK_RV shim_C_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	CK_RV rv = shim_real->C_Sign(s, data, len, sig, sig_len);

	/* Only a real signature (not a length query) is tampered with: the
	 * last byte is in s for ECDSA (r || s) and in the RSA signature. */
	if (rv == CKR_OK && sig != NULL && *sig_len > 0 && (shim_faults() & SHIM_FLIP_SIGN))
		sig[*sig_len - 1] ^= 0x01;
	return rv;
}

static CK_RV shim_C_GenerateRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG len)
{
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&shim_lock);
	if ((shim_faults() & SHIM_REPEAT_RANDOM) && shim_saved_len >= len && len > 0) {
		/* The previous block again. */
		memcpy(out, shim_saved, len);
	} else {
		rv = shim_real->C_GenerateRandom(s, out, len);
		if (rv == CKR_OK && len <= sizeof(shim_saved)) {
			memcpy(shim_saved, out, len);
			shim_saved_len = len;
		}
	}
	pthread_mutex_unlock(&shim_lock);
	return rv;
}

static CK_RV shim_C_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pubt, CK_ULONG np,
				    CK_ATTRIBUTE_PTR privt, CK_ULONG nk, CK_OBJECT_HANDLE_PTR pub,
				    CK_OBJECT_HANDLE_PTR priv)
{
	if (shim_faults() & SHIM_ERROR_STATE)
		return CKR_FIPS_SELF_TEST_FAILED;
	return shim_real->C_GenerateKeyPair(s, m, pubt, np, privt, nk, pub, priv);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	const char *path = getenv("KH_SHIM_MODULE");
	CK_C_GetFunctionList getfl;
	void *dl;
	CK_RV rv = CKR_OK;

	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&shim_lock);
	if (shim_real == NULL) {
		dl = dlopen(path != NULL ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
		*(void **)&getfl = dl != NULL ? dlsym(dl, "C_GetFunctionList") : NULL;
		if (getfl == NULL) {
			const char *why = dlerror();

			fprintf(stderr, "kh_shim: cannot load the real module: %s\n", why != NULL ? why : "no C_GetFunctionList");
			rv = CKR_GENERAL_ERROR;
		} else if ((rv = getfl(&shim_real)) == CKR_OK) {
			shim_list = *shim_real;
			shim_list.C_GetTokenInfo = shim_C_GetTokenInfo;
			shim_list.C_SignInit = shim_C_SignInit;
			shim_list.C_Sign = shim_C_Sign;
			shim_list.C_GenerateRandom = shim_C_GenerateRandom;
			shim_list.C_GenerateKeyPair = shim_C_GenerateKeyPair;
			shim_list.C_GetFunctionList = C_GetFunctionList;
		}
	}
	if (rv == CKR_OK)
		*list = &shim_list;
	pthread_mutex_unlock(&shim_lock);
	return rv;
}
