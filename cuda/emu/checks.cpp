// checks.cpp: reads QM_EMU_NOCHECK.
#include "checks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace qm_emu {

const Checks& checks()
{
    static const Checks c = [] {
        Checks c;
        const char* s = getenv("QM_EMU_NOCHECK");
        while (s && *s) {
            size_t n = strcspn(s, ",");
            if (n == 7 && strncmp(s, "barrier", n) == 0)
                c.barrier = false;
            else if (n == 7 && strncmp(s, "shuffle", n) == 0)
                c.shuffle = false;
            else if (n == 4 && strncmp(s, "race", n) == 0)
                c.race = false;
            else if (n > 0) {
                fprintf(stderr, "qm_emu: QM_EMU_NOCHECK names an unknown checker %.*s (barrier, shuffle, race)\n", (int)n, s);
                exit(2);
            }
            s += n + (s[n] == ',');
        }
        return c;
    }();
    return c;
}

} // namespace qm_emu
