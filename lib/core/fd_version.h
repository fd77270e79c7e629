/* fd_version: the suite's version, reported by every tool's --version and
 * written into every output's provenance. */
#ifndef FD_VERSION_H
#define FD_VERSION_H
#define FD_VERSION "0.1.0"
#endif
