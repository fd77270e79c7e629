/* registry: the architectures fd knows, by name, in listing order. A new
 * model adds its fd_arch_* here (and its declaration in fd_model.h). */
#include "models/fd_model.h"

#include <string.h>

static const struct fd_model_arch *const archs[] = {
	&fd_arch_simplecnn,
	&fd_arch_resnet18,
	&fd_arch_resnet34,
	&fd_arch_resnet50,
};

int fd_model_count(void)
{
	return (int)(sizeof archs / sizeof archs[0]);
}

const struct fd_model_arch *fd_model_arch_at(int i)
{
	return i >= 0 && i < fd_model_count() ? archs[i] : NULL;
}

const struct fd_model_arch *fd_model_arch_find(const char *name)
{
	for (int i = 0; i < fd_model_count(); i++)
		if (!strcmp(archs[i]->name, name))
			return archs[i];
	return NULL;
}
