/* hello: the smallest boot test. Prints a greeting and the command line it
 * received, then powers off through ACPI. */
#include "guest.h"

int guest_main(void)
{
	printf("Hello from the kvmrun test guest\n");
	printf("cmdline: %s\n", start_info_cmdline());
	return 0;
}
