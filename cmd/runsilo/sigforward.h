// See sigforward.c.
int silo_forward_install(const int *sigs, int n);
void silo_forward_to(int pid);
