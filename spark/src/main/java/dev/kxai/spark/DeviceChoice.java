package dev.kxai.spark;

import dev.kxai.InvalidInputException;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.resource.ResourceInformation;

/**
 * Where a task's rows are explained: from the device asked for ({@code auto}, {@code cpu},
 * {@code cuda}) and the resources Spark assigned the task. Spark, not kxai, decides which GPU a task
 * may use ({@code spark.task.resource.gpu.amount}): {@code auto} takes the task's GPU where it has
 * one (the CPU where CUDA turns out unavailable there, as kxai's {@code auto} does), and the CPU where
 * Spark assigned none, never a GPU another task may hold. {@code cuda} on a task without a GPU
 * address drives the process's device (ordinal 0 unless {@code kxai.cuda.device} says otherwise), as
 * the core library does outside Spark.
 *
 * @param backend     the device name given to {@link dev.kxai.Model#load(java.nio.file.Path, String)}
 * @param gpuOrdinal  the CUDA device ordinal from the task's "gpu" address, or null
 * @param why         a few words on the choice, for the device column and the logs
 */
public record DeviceChoice(String backend, Integer gpuOrdinal, String why) {
    /** The resource name Spark's GPU scheduling uses ({@code spark.task.resource.gpu.amount}). */
    public static final String GPU = "gpu";

    public static DeviceChoice forTask(String requested, Map<String, ResourceInformation> resources) {
        String want = requested == null || requested.isBlank() ? "auto" : requested.trim().toLowerCase(Locale.ROOT);
        ResourceInformation gpu = resources == null ? null : resources.get(GPU);
        String address = gpu == null || gpu.addresses().length == 0 ? null : gpu.addresses()[0];
        switch (want) {
            case "cpu":
                return new DeviceChoice("cpu", null, "cpu asked for");
            case "cuda":
                return address == null ? new DeviceChoice("cuda", null, "cuda asked for, no GPU assigned to the task")
                        : new DeviceChoice("cuda", ordinal(address), "task's gpu " + address);
            case "auto":
                return address == null ? new DeviceChoice("cpu", null, "no GPU assigned to the task")
                        : new DeviceChoice("auto", ordinal(address), "task's gpu " + address);
            default:
                throw new InvalidInputException("device must be auto, cpu or cuda, got '" + requested + "'");
        }
    }

    /**
     * A GPU address as a CUDA ordinal. Spark's discovery script (getGpusResources.sh, nvidia-smi's
     * index) gives ordinals; a script giving UUIDs or bus ids would need mapping, refused here with the address.
     */
    static int ordinal(String address) {
        try {
            int n = Integer.parseInt(address.trim());
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new InvalidInputException("Spark assigned the task GPU address '" + address + "'; kxai needs a CUDA "
                + "device ordinal (0, 1, ...): use a discovery script that reports nvidia-smi's index");
    }
}
