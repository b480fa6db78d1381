/*
 * deliver_pipe.c - delivery by pipe (being written).
 */
#include "deliver.h"

/* deliver_pipe - not built yet: every attempt defers */
void
deliver_pipe(const char *target, const struct deliver_req *req,
    struct deliver_outcome *out)
{
	(void)target;
	(void)req;
	deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
	    "pipe delivery is not built yet");
}
