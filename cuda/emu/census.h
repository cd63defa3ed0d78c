// census.h: the census make test-emu reads (QM_EMU_CENSUS=DIR): a
// "NAME 1" line per counted event, appended at once to DIR/PID.EXT, since a
// Go program exits without running C++ destructors. Kernel launches go to
// PID.kernels (launch.cpp), the fake cuDNN's calls to PID.cudnn
// (libcudnn.cpp); scripts/test-emu.sh sums the lines of every process.
#ifndef QM_EMU_CENSUS_H
#define QM_EMU_CENSUS_H

namespace qm_emu {

// Census counts one kind of event in DIR/PID.ext, or nothing when
// QM_EMU_CENSUS is unset.
class Census {
public:
    explicit Census(const char* ext);
    // count appends the line "name 1".
    void count(const char* name) const;

private:
    int fd_;
};

} // namespace qm_emu

#endif // QM_EMU_CENSUS_H
