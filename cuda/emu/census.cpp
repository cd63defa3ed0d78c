// census.cpp: see census.h.
#include "census.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

namespace qm_emu {

Census::Census(const char* ext) : fd_(-1)
{
    const char* dir = getenv("QM_EMU_CENSUS");
    if (!dir || !*dir)
        return;
    std::string path = std::string(dir) + "/" + std::to_string(getpid()) + "." + ext;
    fd_ = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd_ < 0)
        perror(path.c_str());
}

void Census::count(const char* name) const
{
    if (fd_ < 0)
        return;
    char line[160];
    int n = snprintf(line, sizeof line, "%s 1\n", name);
    if (n >= (int)sizeof line)
        n = (int)sizeof line - 1;
    if (write(fd_, line, (size_t)n) != n)
        perror("QM_EMU_CENSUS");
}

} // namespace qm_emu
