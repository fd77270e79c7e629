# ref.mk: reference fixtures. Each tests/ref/NAME.py is run by Debian's
# /usr/bin/python3 (PyTorch, torchvision, PIL, scikit-learn) with one argument,
# the folder to fill, $(B)/ref/NAME/; tests read them from there (FD_BUILD).
# stio.py and models_common.py are modules the scripts import, not fixtures;
# every stamp depends on stio.py, the model fixtures' on models_common.py too.
REF_LIBS := tests/ref/stio.py tests/ref/models_common.py
REF_PY := $(filter-out $(REF_LIBS),$(sort $(wildcard tests/ref/*.py)))
REF_STAMPS := $(REF_PY:tests/ref/%.py=$(B)/ref/%/.done)

$(B)/ref/%/.done: tests/ref/%.py tests/ref/stio.py
	@rm -rf $(@D) && mkdir -p $(@D)
	/usr/bin/python3 $< $(@D)
	@touch $@

$(filter $(B)/ref/models%,$(REF_STAMPS)): tests/ref/models_common.py

ref-fixtures: $(REF_STAMPS)
.PHONY: ref-fixtures
