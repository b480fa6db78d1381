/*
 * deliver_mbox.c - delivery by mbox (being written).
 */
#include "deliver.h"

/* deliver_mbox - not built yet: every attempt defers */
void
deliver_mbox(const char *target, const struct deliver_req *req,
    struct deliver_outcome *out)
{
	(void)target;
	(void)req;
	deliver_outcome_set(out, DELIVER_TEMP, "4.3.0",
	    "mbox delivery is not built yet");
}
