/* Loaded by dev.kxai.backend.cpu.OneDnn just before the oneDNN binding, whose dependency libgomp reads
 * its settings from the environment once, when it is loaded. OpenMP's default wait policy keeps a
 * team's threads spinning after each parallel region; between kxai's oneDNN calls the JVM's own
 * threads run the exact-decision and elementwise passes on the same cores, and the spinning threads
 * took their time: resnet18's IG ran 4-9 s instead of 1.4 s on 2 cores. Passive waiting puts them to
 * sleep instead. A value the user set is kept. */
#include <jni.h>
#include <stdlib.h>

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
    (void) vm;
    (void) reserved;
    setenv("OMP_WAIT_POLICY", "passive", 0);
    return JNI_VERSION_1_8;
}
