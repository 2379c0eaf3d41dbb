/* svc_state.c: the service state's names (GetStatus, logs). */
#include "core/svc.h"

const char *svc_state_name(enum svc_state st)
{
	switch (st) {
	case SVC_STATE_INIT: return "INIT";
	case SVC_STATE_SELF_TEST: return "SELF_TEST";
	case SVC_STATE_OPERATIONAL: return "OPERATIONAL";
	case SVC_STATE_ERROR: return "ERROR";
	}
	return "?";
}
