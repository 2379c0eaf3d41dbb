/* kh_spin: a client's spin before it sleeps for an answer. */
#include "kh_spin.h"

#include <poll.h>

#include "kh_util.h"

bool kh_spin_next(struct kh_spin *s)
{
	if (s->skip == 0)
		return true;
	s->skip--;
	return false;
}

void kh_spin_result(struct kh_spin *s, bool answered)
{
	if (answered) {
		s->backoff /= 2;
		return;
	}
	s->backoff = s->backoff == 0 ? KH_SPIN_SKIP_FIRST
				     : (s->backoff >= KH_SPIN_SKIP_MAX / 2 ? KH_SPIN_SKIP_MAX : s->backoff * 2);
	s->skip = s->backoff;
}

bool kh_spin_poll(int fd, uint32_t us)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	uint64_t t0 = kh_now_mono_us();

	do
		if (poll(&pfd, 1, 0) > 0)
			return true;
	while (kh_now_mono_us() - t0 < us);
	return false;
}
