/* lock.c: the mutexes keyholdd gives the token's PKCS#11 library
 * (C_Initialize's CreateMutex, LockMutex, ...; [token] lock_spin_us).
 *
 * A lock that is held is spun on for up to lock_spin_us before the thread
 * sleeps. The library's critical sections are short (SoftHSM2's
 * C_SignInit takes its session and object mutexes for microseconds), and
 * with the library's own pthread mutexes two event loops signing at once
 * put each other to sleep and woke each other once every two or three
 * requests: each wake-up an inter-processor interrupt on a virtual
 * machine, and the scheduler moving the loops about after it
 * (docs/PERFORMANCE.md, "The token's locks"). Process-wide: PKCS#11 gives
 * the lock functions no context, and one module is loaded once. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "hsm_int.h"
#include "kh_util.h"

static _Atomic unsigned hsm_lock_spin_us;
static _Atomic uint64_t hsm_lock_live, hsm_lock_spun, hsm_lock_slept;

static inline void hsm_lock_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static CK_RV hsm_lock_create(CK_VOID_PTR_PTR out)
{
	pthread_mutex_t *m;

	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	m = malloc(sizeof(*m));
	if (m == NULL)
		return CKR_HOST_MEMORY;
	if (pthread_mutex_init(m, NULL) != 0) {
		free(m);
		return CKR_GENERAL_ERROR;
	}
	atomic_fetch_add_explicit(&hsm_lock_live, 1, memory_order_relaxed);
	*out = m;
	return CKR_OK;
}

static CK_RV hsm_lock_destroy(CK_VOID_PTR p)
{
	if (p == NULL)
		return CKR_MUTEX_BAD;
	pthread_mutex_destroy(p);
	free(p);
	atomic_fetch_sub_explicit(&hsm_lock_live, 1, memory_order_relaxed);
	return CKR_OK;
}

static CK_RV hsm_lock_lock(CK_VOID_PTR p)
{
	pthread_mutex_t *m = p;
	unsigned spin_us = atomic_load_explicit(&hsm_lock_spin_us, memory_order_relaxed), i = 0;
	uint64_t end;

	if (m == NULL)
		return CKR_MUTEX_BAD;
	if (pthread_mutex_trylock(m) == 0)
		return CKR_OK;
	/* Held: spin (the clock read every 16 tries), then sleep. */
	end = kh_now_mono_us() + spin_us;
	for (;;) {
		hsm_lock_relax();
		if (pthread_mutex_trylock(m) == 0) {
			atomic_fetch_add_explicit(&hsm_lock_spun, 1, memory_order_relaxed);
			return CKR_OK;
		}
		if ((++i & 15) == 0 && kh_now_mono_us() >= end)
			break;
	}
	if (pthread_mutex_lock(m) != 0)
		return CKR_GENERAL_ERROR;
	atomic_fetch_add_explicit(&hsm_lock_slept, 1, memory_order_relaxed);
	return CKR_OK;
}

static CK_RV hsm_lock_unlock(CK_VOID_PTR p)
{
	if (p == NULL)
		return CKR_MUTEX_BAD;
	return pthread_mutex_unlock(p) == 0 ? CKR_OK : CKR_MUTEX_NOT_LOCKED;
}

void hsm_lock_args(CK_C_INITIALIZE_ARGS *args, unsigned spin_us)
{
	atomic_store_explicit(&hsm_lock_spin_us, spin_us, memory_order_relaxed);
	args->CreateMutex = hsm_lock_create;
	args->DestroyMutex = hsm_lock_destroy;
	args->LockMutex = hsm_lock_lock;
	args->UnlockMutex = hsm_lock_unlock;
}

void hsm_lock_stats(struct hsm_lock_stats *out)
{
	out->mutexes = atomic_load_explicit(&hsm_lock_live, memory_order_relaxed);
	out->spun = atomic_load_explicit(&hsm_lock_spun, memory_order_relaxed);
	out->slept = atomic_load_explicit(&hsm_lock_slept, memory_order_relaxed);
}
