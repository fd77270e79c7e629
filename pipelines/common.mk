# common.mk: variables and the demo pipeline shared by every phase.
DATA    ?= $(WORK)/synth
WORK    ?= work
DEVICE  ?= cpu
FOLDS   ?= 5
LAUNCH  ?=
FD      := $(CURDIR)/bin
