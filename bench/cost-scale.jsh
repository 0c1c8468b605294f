// Scales the cost model of two `kxai bench --device cuda` runs of one model to another number of
// path rows (steps x batch), and prints the roofline table there. Per family, FLOPs and bytes are
// affine in the rows (activations scale, weights do not), so two runs at r1 < r2 rows fix them;
// launches are taken from the run at r2 (one chunk per run: as many launches as one pass).
// A MODEL from counted launches, not a measurement.
//
//   jshell --class-path target/classes -R-Dcost.a=RUN1.txt -R-Dcost.ra=1 -R-Dcost.b=RUN2.txt \
//          -R-Dcost.rb=16 -R-Dcost.rows=800 -R-Dcost.gpu=H200 bench/cost-scale.jsh
import dev.kxai.backend.cuda.KernelCosts;
import dev.kxai.bench.Roofline;
import java.nio.file.*;
import java.util.*;

Map<String, double[]> read(String file) throws Exception {
    Map<String, double[]> m = new TreeMap<>();
    boolean in = false;
    for (String l : Files.readAllLines(Path.of(file))) {
        if (l.startsWith("family ")) { in = true; continue; }
        if (l.startsWith("total ")) break;
        if (!in) continue;
        String[] f = l.trim().split("\\s+");
        m.put(f[0], new double[] {Double.parseDouble(f[1]), Double.parseDouble(f[2]) * 1e9, Double.parseDouble(f[3]) * 1e9});
    }
    return m;
}

double ra = Double.parseDouble(System.getProperty("cost.ra"));
double rb = Double.parseDouble(System.getProperty("cost.rb"));
double rows = Double.parseDouble(System.getProperty("cost.rows"));
Map<String, double[]> a = read(System.getProperty("cost.a"));
Map<String, double[]> b = read(System.getProperty("cost.b"));
List<KernelCosts.Totals> scaled = new ArrayList<>();
for (String f : b.keySet()) {
    double[] x = a.getOrDefault(f, new double[3]);
    double[] y = b.get(f);
    double[] v = new double[3];
    for (int i = 1; i < 3; i++) {
        double slope = (y[i] - x[i]) / (rb - ra);
        v[i] = Math.max(0, y[i] + slope * (rows - rb));
    }
    scaled.add(new KernelCosts.Totals(f, KernelCosts.structure(f), (long) y[0], v[1], v[2]));
}
System.out.println("scaled to " + (long) rows + " rows from runs at " + (long) ra + " and " + (long) rb + " rows");
System.out.print(Roofline.report(scaled, Roofline.gpu(System.getProperty("cost.gpu", "H200"))));
/exit
