// Rewrites, inside a jar, every class file older than version 50 (Java 6) as version 52 with stack map frames,
// changing nothing else. Run by the build (pom.xml, package phase, after the shade plugin made target/dedisk.jar):
//
//     java scripts/UpgradeOldClassFiles.java target/dedisk.jar
//
// Why: the JDK's AOT cache (JEP 483) skips classes older than version 50 ("Old class has been linked"), and
// picocli 4.7.7 ships version 49 classes, so every dedisk command loaded, parsed and verified picocli's 168 classes
// from the jar with the old type-inferring verifier: ~50 ms of a one-shot command's ~330 ms (docs/decisions.md,
// "CLI start"). Upgraded, they are loaded and linked from the cache like the rest.
//
// Each method body is rebuilt by the JDK's class-file API, which computes the frames from the bytecode and the class
// hierarchy (the jar's classes, then the JDK's); each rewritten class is checked by that API's verifier before the
// jar is replaced, and the build fails on any error. The jar is rewritten in a temporary file and moved over the
// original, so an interrupted run leaves the original. Entries keep their order, names and times.
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.CodeTransform;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

class UpgradeOldClassFiles {
    static final int OLDEST_WITH_FRAMES = 50;
    static final int TARGET = 52;

    public static void main(String[] args) throws Exception {
        if (args.length != 1) throw new IllegalArgumentException("usage: java UpgradeOldClassFiles.java JAR");
        Path jar = Path.of(args[0]);
        Path tmp = jar.resolveSibling(jar.getFileName() + ".upgrading");
        int upgraded = 0;
        try (URLClassLoader classes = new URLClassLoader(new URL[] {jar.toUri().toURL()}, null)) {
            ClassHierarchyResolver hierarchy = ClassHierarchyResolver.ofResourceParsing(classes).orElse(ClassHierarchyResolver.defaultResolver());
            ClassFile cf = ClassFile.of(ClassFile.StackMapsOption.GENERATE_STACK_MAPS, ClassFile.ClassHierarchyResolverOption.of(hierarchy));
            ClassTransform upgrade = ClassTransform.transformingMethodBodies(CodeTransform.ACCEPT_ALL)
                    .andThen(ClassTransform.endHandler(b -> b.withVersion(TARGET, 0)));
            try (ZipInputStream in = new ZipInputStream(Files.newInputStream(jar)); ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(tmp))) {
                for (ZipEntry e; (e = in.getNextEntry()) != null; ) {
                    byte[] bytes = in.readAllBytes();
                    if (e.getName().endsWith(".class") && !e.getName().endsWith("module-info.class")) {
                        ClassModel model = cf.parse(bytes);
                        if (model.majorVersion() < OLDEST_WITH_FRAMES) {
                            bytes = cf.transformClass(model, upgrade);
                            List<VerifyError> errors = cf.verify(bytes);
                            if (!errors.isEmpty()) throw new IllegalStateException(e.getName() + " does not verify after the upgrade: " + errors);
                            upgraded++;
                        }
                    }
                    ZipEntry copy = new ZipEntry(e.getName());
                    copy.setTime(e.getTime());
                    out.putNextEntry(copy);
                    out.write(bytes);
                    out.closeEntry();
                }
            }
            Files.move(tmp, jar, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
        System.out.println("upgraded " + upgraded + " class files older than version " + OLDEST_WITH_FRAMES + " to version " + TARGET + " in " + jar);
    }
}
